package chain

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// events returns every event of chain c.
func events(t *testing.T, c *Chain) []Event {
	t.Helper()
	var out []Event
	if err := c.Events(func(e Event) error {
		e.Data = append([]byte(nil), e.Data...)
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// exportLines is chain c exported as JSON lines.
func exportLines(t *testing.T, c *Chain) []byte {
	t.Helper()
	var out []byte
	for _, e := range events(t, c) {
		out = AppendJSON(out, &e)
		out = append(out, '\n')
	}
	return out
}

func testChain(t *testing.T) *Chain {
	t.Helper()
	c := NewMemory(Options{})
	var f Fields
	for i, data := range [][]byte{
		f.Str("level", "info").Str("message", "héllo \"world\"").Data(),
		[]byte("not json \x00\xff"),
		[]byte(`{"a": [1, 2.50, "x"]}`), // spacing and number spelling must survive
		nil,
	} {
		if _, err := c.Append(KindCustom, "op", data); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		f.Reset()
	}
	return c
}

func TestReadJSONRoundTrip(t *testing.T) {
	c := testChain(t)
	want := events(t, c)
	var got []Event
	if err := ReadJSON(bytes.NewReader(exportLines(t, c)), func(e *Event) error {
		got = append(got, *e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d events back, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Seq != w.Seq || g.Parent != w.Parent || g.Kind != w.Kind || g.Op != w.Op || g.Time != w.Time || !bytes.Equal(g.Data, w.Data) || g.Hash != w.Hash {
			t.Errorf("event %d: got %+v, want %+v", i, g, w)
		}
	}
}

func TestReadJSONRejectsDamage(t *testing.T) {
	lines := strings.Split(strings.TrimSuffix(string(exportLines(t, testChain(t))), "\n"), "\n")
	tests := map[string]struct {
		lines []string
		want  string
	}{
		"tampered data":    {lines: []string{strings.Replace(lines[0], "info", "warn", 1)}, want: "content hashes to"},
		"dropped event":    {lines: []string{lines[0], lines[2]}, want: "does not follow"},
		"starts mid-chain": {lines: lines[1:], want: "neither a chain's start nor a SegmentStart"},
		"writer error":     {lines: []string{lines[0], `{"error":"record 1 is corrupt"}`}, want: "the writer reports: record 1 is corrupt"},
		"unknown field":    {lines: []string{strings.Replace(lines[0], `{"seq"`, `{"extra":1,"seq"`, 1)}, want: "unknown field"},
		"not json":         {lines: []string{"hello"}, want: "not a chain event"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := ReadJSON(strings.NewReader(strings.Join(tc.lines, "\n")), func(*Event) error { return nil })
			var ce *CorruptError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a *CorruptError containing %q", err, tc.want)
			}
		})
	}
}

func TestReadJSONPassesCallbackErrors(t *testing.T) {
	stop := errors.New("stop")
	err := ReadJSON(bytes.NewReader(exportLines(t, testChain(t))), func(*Event) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("err = %v, want the callback's own error", err)
	}
}

// FuzzParseJSON: a line from a host (or whatever answers on its port) never
// panics the reader, and what it accepts exports back to the same event.
func FuzzParseJSON(f *testing.F) {
	f.Add([]byte(`{"seq":0,"hash":"` + strings.Repeat("0", 64) + `","parent":"` + strings.Repeat("0", 64) + `","kind":"LogEvent","op":"log","time":"2025-01-02T03:04:05.000000001Z","data":{"a":1}}`))
	f.Add([]byte(`{"seq":1,"hash":"` + strings.Repeat("a", 64) + `","parent":"` + strings.Repeat("b", 64) + `","kind":"CustomEvent","op":"e","time":"2025-01-02T03:04:05Z","data":"AAEC","data_encoding":"base64"}`))
	f.Add([]byte(`{"error":"x"}`))
	f.Add([]byte(`{"data":1,"data_encoding":"base64"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := ParseJSON(line)
		if err != nil {
			return
		}
		again, err := ParseJSON(AppendJSON(nil, e))
		if err != nil {
			t.Fatalf("the export of an accepted line does not parse: %v", err)
		}
		if again.Seq != e.Seq || again.Hash != e.Hash || again.Parent != e.Parent || again.Kind != e.Kind ||
			again.Op != e.Op || again.Time != e.Time || ComputeHash(again) != ComputeHash(e) {
			t.Fatalf("round trip changed the event: %+v -> %+v", e, again)
		}
	})
}
