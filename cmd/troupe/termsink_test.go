package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode"
)

// hiddenSamples are guest text a terminal must not get raw: each hides
// or reorders what follows it.
var hiddenSamples = map[string]string{
	"right-to-left override": "\u202e",
	"line separator":         "\u2028",
	"paragraph separator":    "\u2029",
	"zero-width space":       "\u200b",
	"first strong isolate":   "\u2068",
	"byte order mark":        "\ufeff",
	"tag character":          "\U000e0041", // Cf beyond the BMP
}

func TestTermSinkEscapesGuestText(t *testing.T) {
	var buf bytes.Buffer
	s := newTermSink(&buf, false, false)
	s.now = func() time.Time { return time.Date(2026, 1, 2, 12, 0, 1, 123e6, time.UTC) }
	l := s.WithValues("namespace", "", "name", "hello", "actorID", "id-1")
	l.Info(0, "two\nlines \x1b[31mred\x1b[0m \xff")
	l.Info(0, "careful", "level", "warn", "source", "wasi")
	l.Info(0, "invoice_\u202efdp.exe\u2028fake line\u200b \U000e0041 naïve 日本 👍")
	l.Error(nil, "bad")
	if s.Enabled(1) {
		t.Error("debug enabled without --verbose")
	}
	want := `12:00:01.123 INFO  hello: two\nlines \u001b[31mred\u001b[0m \xff
12:00:01.123 WARN  hello: careful source=wasi
12:00:01.123 INFO  hello: invoice_\u202efdp.exe\u2028fake line\u200b \U000e0041 naïve 日本 👍
12:00:01.123 ERROR hello: bad
`
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestEscapeTerminalHidesEveryHiddenCharacter(t *testing.T) {
	for name, r := range hiddenSamples {
		got := escapeTerminal("a" + r + "b")
		if strings.Contains(got, r) || got == "ab" {
			t.Errorf("%s: %q reaches the terminal as %q", name, r, got)
		}
	}
	// Every format, line- and paragraph-separator character, not just the
	// samples.
	for _, table := range []*unicode.RangeTable{unicode.Cf, unicode.Zl, unicode.Zp, unicode.Cc} {
		for _, rg := range table.R16 {
			for r := rune(rg.Lo); r <= rune(rg.Hi); r += rune(rg.Stride) {
				if got := escapeTerminal(string(r)); strings.ContainsRune(got, r) {
					t.Fatalf("U+%04X is not escaped: %q", r, got)
				}
			}
		}
	}
}

// TestTermSinkJSONEscapesHiddenCharacters: the JSON format is read on
// terminals too; its lines carry the hidden characters as \u escapes and
// still decode to the text the guest logged.
func TestTermSinkJSONEscapesHiddenCharacters(t *testing.T) {
	for name, r := range hiddenSamples {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			msg := "a" + r + "b\u0085c\x7f" // and a C1 control and DEL, which encoding/json leaves raw
			newTermSink(&buf, true, false).WithValues("name", "x"+r).Info(0, msg, "key", r)
			line := strings.TrimSuffix(buf.String(), "\n")
			if strings.ContainsFunc(line, hidden) {
				t.Fatalf("raw hidden character in %q", line)
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			if rec["msg"] != msg || rec["name"] != "x"+r || rec["key"] != r {
				t.Fatalf("decoded %q, want msg %q", rec, msg)
			}
		})
	}
}
