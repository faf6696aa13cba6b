package chain

import (
	"encoding/base64"
	"encoding/hex"
	"math"
	"strconv"
	"unicode/utf8"
)

// Fields builds an event's data as a JSON object without reflection. A
// reused Fields allocates nothing once its buffer has grown to fit. The zero
// value is ready to use.
//
//	var f chain.Fields
//	c.Append(chain.KindRuntimeOperation, "get-env", f.Reset().Str("name", n).Secret("value").Data())
type Fields struct {
	buf []byte
}

// Reset empties f for a new object and returns it.
func (f *Fields) Reset() *Fields {
	f.buf = f.buf[:0]
	return f
}

func (f *Fields) key(k string) {
	switch len(f.buf) {
	case 0:
		f.buf = append(f.buf, '{')
	case 1: // just the brace: first field
	default:
		f.buf = append(f.buf, ',')
	}
	f.buf = AppendJSONString(f.buf, k)
	f.buf = append(f.buf, ':')
}

// Str adds a string; invalid UTF-8 becomes U+FFFD.
func (f *Fields) Str(key, v string) *Fields {
	f.key(key)
	f.buf = AppendJSONString(f.buf, v)
	return f
}

// Int adds a signed integer.
func (f *Fields) Int(key string, v int64) *Fields {
	f.key(key)
	f.buf = strconv.AppendInt(f.buf, v, 10)
	return f
}

// Uint adds an unsigned integer.
func (f *Fields) Uint(key string, v uint64) *Fields {
	f.key(key)
	f.buf = strconv.AppendUint(f.buf, v, 10)
	return f
}

// Float adds a number. JSON has no NaN or infinities, so those are written
// as the strings "NaN", "+Inf" and "-Inf".
func (f *Fields) Float(key string, v float64) *Fields {
	f.key(key)
	switch {
	case math.IsNaN(v):
		f.buf = append(f.buf, `"NaN"`...)
	case math.IsInf(v, 1):
		f.buf = append(f.buf, `"+Inf"`...)
	case math.IsInf(v, -1):
		f.buf = append(f.buf, `"-Inf"`...)
	default:
		f.buf = strconv.AppendFloat(f.buf, v, 'g', -1, 64)
	}
	return f
}

// Bool adds true or false.
func (f *Fields) Bool(key string, v bool) *Fields {
	f.key(key)
	f.buf = strconv.AppendBool(f.buf, v)
	return f
}

// Blob adds bytes as a base64 string (standard encoding, padded).
func (f *Fields) Blob(key string, v []byte) *Fields {
	f.key(key)
	f.buf = append(f.buf, '"')
	f.buf = base64.StdEncoding.AppendEncode(f.buf, v)
	f.buf = append(f.buf, '"')
	return f
}

// Hex adds bytes as a string of lowercase hex digits (a digest), without
// making a string of them first.
func (f *Fields) Hex(key string, v []byte) *Fields {
	f.key(key)
	f.buf = append(f.buf, '"')
	f.buf = hex.AppendEncode(f.buf, v)
	f.buf = append(f.buf, '"')
	return f
}

// JSON adds raw, which must be valid JSON (the caller checks).
func (f *Fields) JSON(key string, raw []byte) *Fields {
	f.key(key)
	f.buf = append(f.buf, raw...)
	return f
}

// Null adds null.
func (f *Fields) Null(key string) *Fields {
	f.key(key)
	f.buf = append(f.buf, "null"...)
	return f
}

// Secret records that key's value was redacted: it writes
// "key":{"redacted":true} and takes no value, so a secret cannot reach the
// chain through this call.
func (f *Fields) Secret(key string) *Fields {
	f.key(key)
	f.buf = append(f.buf, `{"redacted":true}`...)
	return f
}

// Data returns the JSON object. It is valid until f is next changed.
func (f *Fields) Data() []byte {
	if len(f.buf) == 0 {
		f.buf = append(f.buf, '{')
	}
	n := len(f.buf)
	f.buf = append(f.buf, '}')
	out := f.buf[: n+1 : n+1]
	f.buf = f.buf[:n]
	return out
}

const hexDigits = "0123456789abcdef"

// plain8 reports whether the 8 bytes of b are all printable ASCII other
// than '"' and '\\', the bytes AppendJSONString copies as they are. SWAR:
// a byte below 0x20 borrows in x-0x20..., a byte equal to '"' or '\\' is a
// zero byte of x^'"'... or x^'\\'..., and a byte from 0x80 up has its high
// bit set; any of these leaves a high bit in the mask (borrows can add
// more, but only where there is one already).
func plain8(b string) bool {
	_ = b[7]
	x := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	q, bs := x^('"'*lo), x^('\\'*lo)
	m := (x - 0x20*lo) | (q - lo) | (bs - lo) | x
	return m&hi == 0
}

// AppendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time while they need nothing done: most of
		// what guests log is plain ASCII, and the log path is hot.
		if i+8 <= len(s) && plain8(s[i:i+8]) {
			i += 8
			continue
		}
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
