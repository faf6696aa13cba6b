package chain

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// SyncEnd's size is where the next record starts in the file, its head
// and length are the last event's, and everything before it is durable;
// after Close it still answers, with the end Close made durable.
func TestSyncEndIsADurableRecordBoundary(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	c, _, err := Open(path, Options{SyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var last Hash
	for i := range 5 {
		if last, err = c.Append(KindLog, "log", []byte(`{"i":`+string(rune('0'+i))+`}`)); err != nil {
			t.Fatal(err)
		}
		end, size, err := c.SyncEnd()
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if end.Length != uint64(i+1) || end.Head != last || size != fi.Size() || c.Durable() != end.Length {
			t.Fatalf("after %d appends: end %+v size %d (file %d, durable %d), want length %d head %s", i+1, end, size, fi.Size(), c.Durable(), i+1, last.Short())
		}
		// The bytes up to size are whole records that verify as a segment.
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Seek(int64(len(Magic)), 0); err != nil {
			t.Fatal(err)
		}
		rep, err := VerifySegment(io.LimitReader(f, size-int64(len(Magic))), nil, nil)
		f.Close()
		if err != nil || rep.End() != end {
			t.Fatalf("the file up to %d: %+v %v, want end %+v", size, rep, err, end)
		}
	}
	// Buffered but not written: SyncEnd writes and syncs it.
	if _, err := c.Append(KindLog, "log", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	end, size, err := c.SyncEnd()
	if err != nil || end.Length != 6 {
		t.Fatalf("%+v %v", end, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	end2, size2, err := c.SyncEnd()
	if err != nil || end2 != end || size2 != size {
		t.Fatalf("after Close: %+v %d %v, want %+v %d", end2, size2, err, end, size)
	}
	if _, _, err := NewMemory(Options{}).SyncEnd(); err == nil {
		t.Fatal("a memory chain gave an end")
	}
}
