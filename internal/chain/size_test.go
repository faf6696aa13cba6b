package chain

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestSizeMatchesTheFile: the disk budget counts a chain's bytes with Size
// and each append's with RecordSize, so both must agree with the file,
// across appends of every kind, a segment start, a reopen and a torn tail
// cut by Open.
func TestSizeMatchesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	c, _, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fileSize := func() int64 {
		t.Helper()
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Size(), fileSize(); got != want {
		t.Fatalf("empty chain: Size %d, file %d", got, want)
	}
	for i, e := range []struct {
		kind Kind
		op   string
		data []byte
	}{
		{KindActorStart, "start", []byte(`{"actorID":"a"}`)},
		{KindLog, "log", bytes.Repeat([]byte("x"), 70000)},
		{KindMetric, "record-metric", nil},
		{KindActorStop, "stop", []byte(`{}`)},
	} {
		before := c.Size()
		if _, err := c.Append(e.kind, e.op, e.data); err != nil {
			t.Fatal(err)
		}
		if got, want := c.Size()-before, int64(RecordSize(e.kind, e.op, len(e.data))); got != want {
			t.Fatalf("append %d grew Size by %d, RecordSize says %d", i, got, want)
		}
	}
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Size(), fileSize(); got != want {
		t.Fatalf("after appends: Size %d, file %d", got, want)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// A torn tail: Open cuts it, and Size is what is left.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{0, 0, 1, 0, 9}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	c, rec, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if rec.DroppedBytes != 5 {
		t.Fatalf("dropped %d bytes, want 5", rec.DroppedBytes)
	}
	if got, want := c.Size(), fileSize(); got != want {
		t.Fatalf("reopened: Size %d, file %d", got, want)
	}
	m := NewMemory(Options{})
	if _, err := m.StartSegment(Hash{1}, 3, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if got, want := m.Size(), int64(RecordSize(KindSegmentStart, "segment-start", 2)); got != want {
		t.Fatalf("memory chain: Size %d, want %d", got, want)
	}
}
