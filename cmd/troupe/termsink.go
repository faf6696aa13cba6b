package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/go-logr/logr"
)

// termSink is a logr.LogSink that writes one line per record, readable
// (`12:00:01.123 INFO  hello: message key=value`) or as JSON. Guest text is
// escaped: a log message cannot start a new line, send a terminal control
// sequence or reorder what the terminal shows.
type termSink struct {
	mu      *sync.Mutex
	w       io.Writer
	json    bool
	verbose bool
	name    string // the actor's name (from WithValues "name")
	values  []any
	now     func() time.Time
}

func newTermSink(w io.Writer, asJSON, verbose bool) *termSink {
	return &termSink{mu: &sync.Mutex{}, w: w, json: asJSON, verbose: verbose, now: time.Now}
}

func (s *termSink) Init(logr.RuntimeInfo) {}

func (s *termSink) Enabled(level int) bool { return level == 0 || s.verbose }

func (s *termSink) Info(level int, msg string, kv ...any) {
	lvl := "info"
	if level > 0 {
		lvl = "debug"
	}
	s.write(lvl, msg, nil, kv)
}

func (s *termSink) Error(err error, msg string, kv ...any) { s.write("error", msg, err, kv) }

func (s *termSink) WithValues(kv ...any) logr.LogSink {
	c := *s
	c.values = append(append([]any{}, s.values...), kv...)
	for i := 0; i+1 < len(kv); i += 2 {
		if k, _ := kv[i].(string); k == "name" {
			c.name = fmt.Sprint(kv[i+1])
		}
	}
	return &c
}

func (s *termSink) WithName(name string) logr.LogSink {
	c := *s
	if c.name == "" {
		c.name = name
	} else {
		c.name += "/" + name
	}
	return &c
}

// hiddenKeys are context the text format leaves out: the name is the
// line's prefix, the rest is constant in local mode.
var hiddenKeys = map[string]bool{"name": true, "namespace": true, "actorID": true, "level": true}

func (s *termSink) write(lvl, msg string, err error, kv []any) {
	line := s.format(lvl, msg, err, kv)
	s.mu.Lock()
	_, _ = s.w.Write(line)
	s.mu.Unlock()
}

// droppedNotice is the line that stands where n log lines were dropped
// because the output did not take them (see asyncwriter).
func (s *termSink) droppedNotice(n uint64) []byte {
	c := *s
	c.name, c.values = "troupe", nil
	return c.format("warn", "log lines dropped: the output did not keep up (the chain has them all)", nil, []any{"dropped", n})
}

// format is one record's line, its newline included.
func (s *termSink) format(lvl, msg string, err error, kv []any) []byte {
	all := append(append([]any{}, s.values...), kv...)
	for i := 0; i+1 < len(all); i += 2 {
		if k, _ := all[i].(string); k == "level" {
			if v, _ := all[i+1].(string); v != "" {
				lvl = v
			}
		}
	}
	var line []byte
	t := s.now()
	if s.json {
		rec := map[string]any{"time": t.Format(time.RFC3339Nano), "level": lvl, "msg": msg}
		if err != nil {
			rec["error"] = err.Error()
		}
		for i := 0; i+1 < len(all); i += 2 {
			k := fmt.Sprint(all[i])
			if k == "level" {
				continue
			}
			rec[k] = jsonValue(all[i+1])
		}
		line = terminalJSON(rec)
	} else {
		var b strings.Builder
		b.WriteString(t.Format("15:04:05.000"))
		b.WriteByte(' ')
		fmt.Fprintf(&b, "%-5s ", strings.ToUpper(lvl))
		if s.name != "" {
			b.WriteString(escapeTerminal(s.name))
			b.WriteString(": ")
		}
		b.WriteString(escapeTerminal(msg))
		if err != nil {
			b.WriteString(": ")
			b.WriteString(escapeTerminal(err.Error()))
		}
		for i := 0; i+1 < len(all); i += 2 {
			k := fmt.Sprint(all[i])
			if hiddenKeys[k] {
				continue
			}
			v := fmt.Sprint(all[i+1])
			if strings.ContainsAny(v, " \"=") || v == "" {
				v = strconv.Quote(v)
			}
			fmt.Fprintf(&b, " %s=%s", escapeTerminal(k), escapeTerminal(v))
		}
		line = []byte(b.String())
	}
	return append(line, '\n')
}

func jsonValue(v any) any {
	switch v := v.(type) {
	case error:
		return v.Error()
	case fmt.Stringer:
		return v.String()
	}
	return v
}

// hidden reports whether r must not reach a terminal raw: C0 and C1
// controls and DEL (new lines, escape sequences), and the invisible
// characters that change how the rest of a line reads: format characters
// (Cf: the bidi overrides and isolates such as U+202E, zero-width spaces
// and joiners such as U+200B, soft hyphens) and the line and paragraph
// separators (Zl U+2028, Zp U+2029).
func hidden(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) ||
		unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

// escapeTerminal replaces hidden characters and invalid UTF-8 with visible
// escapes (\n, \u202e, \xff).
func escapeTerminal(s string) string {
	clean := true
	for _, r := range s {
		if hidden(r) || r == utf8.RuneError {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r > 0xffff && hidden(r):
			fmt.Fprintf(&b, `\U%08x`, r)
		case hidden(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// terminalJSON is v as one line of JSON that is safe on a terminal:
// encoding/json already escapes control characters, U+2028 and U+2029,
// and this escapes the other hidden characters (U+202E, U+200B, ...) the
// same way, so the line decodes to the same values.
func terminalJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": "encoding a log record: " + err.Error()})
	}
	if !strings.ContainsFunc(string(b), hidden) {
		return b
	}
	// Hidden characters can only stand inside JSON strings, and \u
	// escapes mean the same there.
	out := make([]byte, 0, len(b)+32)
	for _, r := range string(b) {
		if !hidden(r) {
			out = utf8.AppendRune(out, r)
			continue
		}
		if r > 0xffff {
			r1, r2 := utf16.EncodeRune(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
			continue
		}
		out = fmt.Appendf(out, `\u%04x`, r)
	}
	return out
}
