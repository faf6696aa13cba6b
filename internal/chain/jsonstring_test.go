package chain

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// appendJSONStringBytewise is AppendJSONString without its eight-byte fast
// path: the reference the fast path must agree with.
func appendJSONStringBytewise(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// TestAppendJSONStringFastPath puts every byte value at every position of
// a 17-byte plain run (two eight-byte words and a tail), and a few
// multi-byte and invalid sequences across word boundaries: the output is
// the byte-by-byte reference's.
func TestAppendJSONStringFastPath(t *testing.T) {
	base := []byte("abcdefghijklmnopq")
	for pos := range base {
		for b := 0; b < 256; b++ {
			s := append([]byte(nil), base...)
			s[pos] = byte(b)
			if got, want := AppendJSONString(nil, string(s)), appendJSONStringBytewise(nil, string(s)); string(got) != string(want) {
				t.Fatalf("byte %#x at %d: %s, want %s", b, pos, got, want)
			}
		}
	}
	for _, s := range []string{"", "1234567", "12345678", "1234567é90", "abcdefg\xffhijklmnop", "€€€€€€€€", strings.Repeat("0123456789", 10),
		"abcdefg\u2028hij", "abcdefgh\"ijklmno\\", "\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f", "        ", "~~~~~~~~!!!!!!!!"} {
		if got, want := AppendJSONString(nil, s), appendJSONStringBytewise(nil, s); string(got) != string(want) {
			t.Errorf("%q: %s, want %s", s, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("0123456789012345678901234567890123456789")
	f.Add("abcdefg\"hijklmnop\\qrs\x00tuv\xffwxyz€")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := AppendJSONString(nil, s), appendJSONStringBytewise(nil, s); string(got) != string(want) {
			t.Fatalf("%q: %s, want %s", s, got, want)
		}
	})
}
