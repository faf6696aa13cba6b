package textutil

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestTruncateNeverSplitsARune cuts a text of mixed widths at every size.
func TestTruncateNeverSplitsARune(t *testing.T) {
	s := strings.Repeat("aé€😀", 50)
	for max := 0; max <= len(s)+1; max++ {
		got := Truncate(s, max)
		if len(got) > max || !utf8.ValidString(got) {
			t.Fatalf("Truncate(…, %d) = %d bytes, valid UTF-8 %v", max, len(got), utf8.ValidString(got))
		}
		if max < len(s) && max >= len(Ellipsis) && !strings.HasSuffix(got, Ellipsis) {
			t.Fatalf("Truncate(…, %d) = %q lacks the ellipsis", max, got)
		}
		if prefix := strings.TrimSuffix(got, Ellipsis); !strings.HasPrefix(s, prefix) || max-len(got) > 3+len(Ellipsis) {
			t.Fatalf("Truncate(…, %d) = %q is not the longest prefix", max, got)
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := map[string]struct {
		s    string
		max  int
		want string
	}{
		"fits":                   {s: "hello", max: 5, want: "hello"},
		"empty":                  {s: "", max: 0, want: ""},
		"cut ascii":              {s: "hello world", max: 8, want: "hello…"},
		"cut before a 2-byte":    {s: "aaaaé", max: 7, want: "aaaaé"},
		"no room inside a rune":  {s: "ééééé", max: 8, want: "éé…"},
		"4-byte runes":           {s: "😀😀😀", max: 10, want: "😀…"},
		"max below the ellipsis": {s: "abcdef", max: 2, want: "ab"},
		"max below, multibyte":   {s: "ééé", max: 2, want: "é"},
		"max one, multibyte":     {s: "ééé", max: 1, want: ""},
		"zero":                   {s: "abc", max: 0, want: ""},
		"negative":               {s: "abc", max: -4, want: ""},
		"ellipsis exactly":       {s: "abcdef", max: 3, want: "…"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Truncate(tc.s, tc.max); got != tc.want {
				t.Fatalf("Truncate(%q, %d) = %q, want %q", tc.s, tc.max, got, tc.want)
			}
		})
	}
}

func FuzzTruncate(f *testing.F) {
	f.Add("héllo wörld", 7)
	f.Add("\xff\xfe\xfd", 2)
	f.Fuzz(func(t *testing.T, s string, max int) {
		got := Truncate(s, max)
		if len(s) <= max {
			if got != s {
				t.Fatalf("a fitting string changed: %q", got)
			}
			return
		}
		if len(got) > max && max > 0 {
			t.Fatalf("%d bytes over the max %d", len(got), max)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("cut valid UTF-8 into invalid: %q", got)
		}
	})
}
