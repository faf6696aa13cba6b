package main

import (
	"bytes"
	"testing"
	"time"
)

func TestTermSinkEscapesGuestText(t *testing.T) {
	var buf bytes.Buffer
	s := newTermSink(&buf, false, false)
	s.now = func() time.Time { return time.Date(2026, 1, 2, 12, 0, 1, 123e6, time.UTC) }
	l := s.WithValues("namespace", "", "name", "hello", "actorID", "id-1")
	l.Info(0, "two\nlines \x1b[31mred\x1b[0m \xff")
	l.Info(0, "careful", "level", "warn", "source", "wasi")
	l.Error(nil, "bad")
	if s.Enabled(1) {
		t.Error("debug enabled without --verbose")
	}
	want := `12:00:01.123 INFO  hello: two\nlines \u001b[31mred\u001b[0m \xff
12:00:01.123 WARN  hello: careful source=wasi
12:00:01.123 ERROR hello: bad
`
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
	}
}
