package runtimehandler

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/limits"
)

func newWriterActor(t *testing.T, maxLog int) (*Actor, *chain.Chain, *logCapture) {
	t.Helper()
	c := chain.NewMemory(chain.Options{})
	logs := &logCapture{}
	cfg := DefaultConfig()
	cfg.MaxLogBytes = maxLog
	a, err := NewActor(ActorOptions{ID: "id", Name: "w", Namespace: "ns", Chain: c, Logger: logs.logger(), Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return a, c, logs
}

// outputLines returns the messages of the chain's wasi-output events,
// checking each event's shape.
func outputLines(t *testing.T, c *chain.Chain, level string) []string {
	t.Helper()
	var out []string
	err := c.Events(func(e chain.Event) error {
		var d map[string]string
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return err
		}
		if e.Kind != chain.KindLog || e.Op != OpWASIOutput || d["level"] != level || d["source"] != "wasi" {
			t.Fatalf("event %s %s %s", e.Kind, e.Op, e.Data)
		}
		out = append(out, d["message"])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLogWriter(t *testing.T) {
	tests := map[string]struct {
		writes []string
		max    int
		want   []string // lines after Close
	}{
		"one line":              {writes: []string{"hello\n"}, want: []string{"hello"}},
		"split across writes":   {writes: []string{"hel", "lo\nwor", "ld\n"}, want: []string{"hello", "world"}},
		"several in one write":  {writes: []string{"a\nb\nc\n"}, want: []string{"a", "b", "c"}},
		"empty lines kept":      {writes: []string{"\n\nx\n"}, want: []string{"", "", "x"}},
		"CRLF":                  {writes: []string{"dos\r\n"}, want: []string{"dos"}},
		"unfinished last line":  {writes: []string{"a\npartial"}, want: []string{"a", "partial"}},
		"long line is cut":      {writes: []string{"abcdefghij\n"}, max: 4, want: []string{"abcd", "efgh", "ij"}},
		"cut exactly at max":    {writes: []string{"abcd\nef\n"}, max: 4, want: []string{"abcd", "ef"}},
		"cut across writes":     {writes: []string{"ab", "cdef", "\n"}, max: 4, want: []string{"abcd", "ef"}},
		"invalid UTF-8":         {writes: []string{"bad \xff byte\n"}, want: []string{"bad \uFFFD byte"}},
		"rune not split at cut": {writes: []string{"abcé\n"}, max: 4, want: []string{"abc", "é"}},
		"rune split by writes":  {writes: []string{"ab\xc3", "\xa9\n"}, max: 4, want: []string{"abé"}},
		"replacement grows":     {writes: []string{"a\xffb\xffc\n"}, max: 5, want: []string{"a\uFFFDb", "\uFFFDc"}},
		"format verbs verbatim": {writes: []string{"%s %d %!\n"}, want: []string{"%s %d %!"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			max := tc.max
			if max == 0 {
				max = limits.DefaultMaxLogBytes
			}
			a, c, logs := newWriterActor(t, max)
			w := a.LogWriter("warn")
			for _, s := range tc.writes {
				n, err := w.Write([]byte(s))
				if err != nil || n != len(s) {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			a.Close()
			got := outputLines(t, c, "warn")
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
				t.Fatalf("lines %q, want %q", got, tc.want)
			}
			lines := logs.all()
			if len(lines) != len(tc.want) {
				t.Fatalf("%d log lines, want %d", len(lines), len(tc.want))
			}
			for i, l := range lines {
				if l["msg"] != tc.want[i] || l["level"] != "warn" || l["source"] != "wasi" || l["actorID"] != "id" {
					t.Fatalf("log line %v", l)
				}
			}
		})
	}
}

func TestLogWriterLevels(t *testing.T) {
	a, c, logs := newWriterActor(t, 100)
	if _, err := a.LogWriter("ERROR").Write([]byte("e\n")); err != nil {
		t.Fatal(err)
	}
	if got := outputLines(t, c, "error"); len(got) != 1 {
		t.Fatalf("got %q", got)
	}
	if l := logs.all()[0]; !hasKey(l, "error") {
		t.Fatalf("stderr line not logged as an error: %v", l)
	}
	a2, c2, _ := newWriterActor(t, 100)
	if _, err := a2.LogWriter("loud").Write([]byte("x\n")); err != nil {
		t.Fatal(err)
	}
	if got := outputLines(t, c2, "info"); len(got) != 1 {
		t.Fatalf("an unknown level did not fall back to info: %q", got)
	}
}

func TestLogWriterChainFailure(t *testing.T) {
	a, err := NewActor(ActorOptions{ID: "id", Chain: failingRecorder{}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := a.LogWriter("info").Write([]byte("one\ntwo\n"))
	if err == nil || n != 4 {
		t.Fatalf("Write = %d, %v; want 4 and an error", n, err)
	}
}

func hasKey(m map[string]any, k string) bool {
	_, ok := m[k]
	return ok
}
