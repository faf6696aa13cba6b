package chain

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// writeLog records what Options.BeforeWrite saw: each write's events and
// how big the file was then, and what AppendNoting's notes said, in order.
type writeLog struct {
	mu    sync.Mutex
	path  string
	steps []string
	sizes []int64 // the file's size at each hook call
}

func (l *writeLog) hook(w Write) error {
	fi, err := os.Stat(l.path)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.steps = append(l.steps, fmt.Sprintf("write %d..%d", w.From, w.To))
	l.sizes = append(l.sizes, fi.Size())
	return nil
}

func (l *writeLog) note(seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.steps = append(l.steps, fmt.Sprintf("note %d", seq))
}

func (l *writeLog) get() ([]string, []int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.steps...), append([]int64(nil), l.sizes...)
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestBeforeWriteRunsOnEveryPath: whichever path hands buffered events to
// the file, the hook is called first, once per write, with the events the
// write carries, while the file does not hold them yet; and a note comes
// before the write of its event.
func TestBeforeWriteRunsOnEveryPath(t *testing.T) {
	big := make([]byte, 64<<10)
	tests := map[string]struct {
		opts Options
		// do appends after the log event at 0 and the noted one at 1 and
		// makes the chain write them (or waits for it to).
		do   func(t *testing.T, c *Chain)
		want []string
	}{
		"group commit": {opts: Options{SyncInterval: time.Millisecond}, do: func(t *testing.T, c *Chain) {
			deadline := time.Now().Add(30 * time.Second)
			for c.Durable() < 2 {
				if time.Now().After(deadline) {
					t.Fatal("the group commit did not write within 30s")
				}
				time.Sleep(time.Millisecond)
			}
		}, want: []string{"note 1", "write 0..2"}},
		"Sync":                  {do: func(t *testing.T, c *Chain) { mustOK(t, c.Sync()) }, want: []string{"note 1", "write 0..2"}},
		"SyncThrough":           {do: func(t *testing.T, c *Chain) { mustOK(t, c.SyncThrough(2)) }, want: []string{"note 1", "write 0..2"}},
		"Events":                {do: func(t *testing.T, c *Chain) { mustOK(t, c.Events(func(Event) error { return nil })) }, want: []string{"note 1", "write 0..2"}},
		"Close":                 {do: func(t *testing.T, c *Chain) { mustOK(t, c.Close()) }, want: []string{"note 1", "write 0..2"}},
		"a sync chain's append": {opts: Options{Durability: Sync}, do: func(*testing.T, *Chain) {}, want: []string{"write 0..1", "note 1", "write 1..2"}},
		"a lifecycle event": {do: func(t *testing.T, c *Chain) {
			_, err := c.Append(KindActorStop, "stop", nil)
			mustOK(t, err)
		}, want: []string{"note 1", "write 0..3"}},
		"a full buffer": {do: func(t *testing.T, c *Chain) {
			for range flushThreshold / len(big) {
				_, err := c.Append(KindLog, "big", big)
				mustOK(t, err)
			}
		}, want: []string{"note 1", fmt.Sprintf("write 0..%d", 2+flushThreshold/len(big))}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			log := &writeLog{path: path}
			tc.opts.BeforeWrite = log.hook
			if tc.opts.SyncInterval == 0 {
				tc.opts.SyncInterval = time.Hour
			}
			c, _, err := Open(path, tc.opts)
			mustOK(t, err)
			defer c.Close()
			_, err = c.Append(KindLog, "log", []byte("a"))
			mustOK(t, err)
			_, err = c.AppendNoting(KindTick, "tick", []byte("b"), log.note)
			mustOK(t, err)
			tc.do(t, c)
			steps, sizes := log.get()
			if strings.Join(steps, ", ") != strings.Join(tc.want, ", ") {
				t.Fatalf("steps %q, want %q", steps, tc.want)
			}
			// Each write came after its hook: the file grew only later.
			after := fileSize(t, path)
			for i, s := range sizes {
				if s >= after || (i > 0 && s <= sizes[i-1]) {
					t.Fatalf("file sizes at the hook calls %v, %d after: a write reached the file before its hook", sizes, after)
				}
			}
		})
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestBeforeWriteErrorStopsTheWrite: a hook that fails keeps the write's
// events out of the file for good, and the chain fails as after a failed
// write, saying why.
func TestBeforeWriteErrorStopsTheWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	fail := false
	c, _, err := Open(path, Options{SyncInterval: time.Hour, BeforeWrite: func(Write) error {
		if fail {
			return errors.New("no room for the state")
		}
		return nil
	}})
	mustOK(t, err)
	_, err = c.Append(KindActorStart, "start", nil)
	mustOK(t, err)
	size := fileSize(t, path)
	fail = true
	_, err = c.Append(KindTick, "tick", []byte("x"))
	mustOK(t, err) // buffered: the hook has not run yet
	if err := c.Sync(); err == nil || !strings.Contains(err.Error(), "before writing events 1 to 1") || !strings.Contains(err.Error(), "no room for the state") {
		t.Fatalf("Sync = %v", err)
	}
	if _, err := c.Append(KindLog, "log", nil); err == nil {
		t.Fatal("the chain appended after its hook failed")
	}
	if err := c.Close(); err == nil {
		t.Fatal("Close hid the failure")
	}
	if got := fileSize(t, path); got != size {
		t.Fatalf("the file grew from %d to %d bytes: the events went to it", size, got)
	}
	rep, err := VerifyFile(path)
	if err != nil || !rep.OK() || rep.Length != 1 {
		t.Fatalf("%+v, %v", rep, err)
	}
}

// TestSyncWritten: the hook's SyncWritten syncs what the file holds only
// when no fsync covered it yet, and says the chain is then durable up to
// where the write begins.
func TestSyncWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	var got []uint64
	c, _, err := Open(path, Options{SyncInterval: time.Hour, BeforeWrite: func(w Write) error {
		d, err := w.SyncWritten()
		got = append(got, d)
		return err
	}})
	mustOK(t, err)
	defer c.Close()
	_, err = c.Append(KindActorStart, "start", nil) // written and synced
	mustOK(t, err)
	_, err = c.Append(KindLog, "a", nil)
	mustOK(t, err)
	// Reading the events writes them without an fsync.
	mustOK(t, c.Events(func(Event) error { return nil }))
	if d := c.Durable(); d != 1 {
		t.Fatalf("Durable = %d after an unsynced write, want 1", d)
	}
	_, err = c.Append(KindLog, "b", nil)
	mustOK(t, err)
	mustOK(t, c.Sync())
	// The start's write began at 0 (nothing to sync), the unsynced one at
	// 1 (already durable), the last at 2, which the hook had to sync.
	if fmt.Sprint(got) != "[0 1 2]" {
		t.Fatalf("SyncWritten returned %v, want [0 1 2]", got)
	}
	if d := c.Durable(); d != 3 {
		t.Fatalf("Durable = %d, want 3", d)
	}
}

// TestCutBack: a chain just opened can be cut back to any length above
// its floor, and goes on from there; anything else is refused.
func TestCutBack(t *testing.T) {
	tests := map[string]struct {
		floor   uint64
		appends bool // append before cutting
		to      uint64
		wantErr string
	}{
		"to the middle":   {to: 3},
		"to one event":    {to: 1},
		"to its floor":    {floor: 4, to: 4},
		"below its floor": {floor: 4, to: 3, wantErr: "below its floor 4"},
		"every event":     {to: 0, wantErr: "would cut every event"},
		"past its end":    {to: 6, wantErr: "it is 6 long"},
		"after an append": {appends: true, to: 3, wantErr: "events were appended since it was opened"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			c, _, err := Open(path, Options{})
			mustOK(t, err)
			var hashes []Hash
			for i := range 6 {
				h, err := c.Append(KindLog, "log", []byte{byte('a' + i)})
				mustOK(t, err)
				hashes = append(hashes, h)
			}
			mustOK(t, c.Close())
			before := fileSize(t, path)
			c, _, err = Open(path, Options{Floor: Floor{Length: tc.floor}})
			mustOK(t, err)
			defer c.Close()
			if tc.appends {
				_, err := c.Append(KindLog, "log", nil)
				mustOK(t, err)
			}
			n, err := c.CutBack(tc.to)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("CutBack = %d, %v; want an error saying %q", n, err, tc.wantErr)
				}
				return
			}
			mustOK(t, err)
			if head, length := c.Head(); length != tc.to || head != hashes[tc.to-1] {
				t.Fatalf("head %s, length %d after the cut; want %s, %d", head.Short(), length, hashes[tc.to-1].Short(), tc.to)
			}
			if after := fileSize(t, path); after != before-n || c.Size() != after {
				t.Fatalf("cut %d bytes of %d: the file is %d, Size says %d", n, before, after, c.Size())
			}
			h, err := c.Append(KindLog, "after", nil)
			mustOK(t, err)
			mustOK(t, c.Close())
			rep, err := VerifyFile(path)
			if err != nil || !rep.OK() || rep.Length != tc.to+1 || rep.Head != h {
				t.Fatalf("the chain after the cut and an append: %+v, %v", rep, err)
			}
		})
	}
}
