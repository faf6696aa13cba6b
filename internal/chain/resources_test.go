package chain

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// heapLive is the live heap after collecting garbage twice: twice so that
// buffers sitting in a sync.Pool (and its victim cache) are gone too, since
// those are not held by any chain.
func heapLive() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// A node hosts up to 10,000 mostly idle actors with a budget of 64 KiB each,
// all included, so an idle durable chain must not sit on a write buffer.
func TestIdleDurableChainsHoldLittleMemory(t *testing.T) {
	const (
		chains = 200
		// Per chain, an eighth of the whole actor's budget: it fails if an
		// idle chain keeps a write buffer of even the initial size.
		limit = 8 << 10
	)
	dir := t.TempDir()
	data := bytes.Repeat([]byte("x"), 100)
	before := heapLive()
	cs := make([]*Chain, chains)
	for i := range cs {
		// Half group-commit, half sync: the sync chains write at once and
		// must let go of their buffer all the same.
		c, _, err := Open(filepath.Join(dir, fmt.Sprint(i), FileName), Options{Durability: Durability(i % 2)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Append(KindLog, "log", data); err != nil {
			t.Fatal(err)
		}
		if err := c.Sync(); err != nil {
			t.Fatal(err)
		}
		cs[i] = c
	}
	// The buffer goes back once a quiet interval has passed; poll for that,
	// then measure.
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; i < chains; {
		cs[i].mu.Lock()
		holds := cs[i].pendBuf != nil
		cs[i].mu.Unlock()
		if !holds {
			i++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("idle chain %d still holds its write buffer", i)
		}
		time.Sleep(time.Millisecond)
	}
	per := (heapLive() - before) / chains
	t.Logf("an idle durable chain retains %d bytes of heap", per)
	if per > limit {
		t.Fatalf("an idle durable chain retains %d bytes of heap, want at most %d", per, limit)
	}
	// A chain that went idle takes a buffer again and appends normally.
	for i, c := range cs {
		if _, err := c.Append(KindLog, "log", data); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		rep, err := VerifyFile(filepath.Join(dir, fmt.Sprint(i), FileName))
		if err != nil || !rep.OK() || rep.Events != 2 {
			t.Fatalf("chain %d after going idle: %+v, %v", i, rep, err)
		}
	}
}

// A busy durable chain keeps its buffer across group commits, including the
// ticks that check whether it went idle, so sustained appends do not
// allocate.
func TestSustainedDurableAppendsDoNotAllocate(t *testing.T) {
	for _, d := range []Durability{GroupCommit, Sync} {
		t.Run(d.String(), func(t *testing.T) {
			c, _, err := Open(filepath.Join(t.TempDir(), FileName), Options{Durability: d, SyncInterval: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			data := bytes.Repeat([]byte("x"), 100)
			runs := 5000
			if d == Sync {
				runs = 200 // each waits for the disk
			}
			if a := testing.AllocsPerRun(runs, func() {
				if _, err := c.Append(KindLog, "log", data); err != nil {
					t.Fatal(err)
				}
			}); a != 0 {
				t.Fatalf("a sustained %s append allocated %.1f times", d, a)
			}
		})
	}
}

// Close must have released the file and its lock when it returns, even while
// a group-commit fsync runs outside the chain's lock: the host reopens an
// actor's chain at once when it reruns the actor in the same directory.
func TestReopenRightAfterCloseUnderGroupCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	const rounds, perRound = 200, 5
	data := bytes.Repeat([]byte("y"), 200)
	var want uint64
	for round := range rounds {
		c, rec, err := Open(path, Options{SyncInterval: time.Millisecond})
		if err != nil {
			t.Fatalf("round %d: reopening right after Close: %v", round, err)
		}
		t.Cleanup(func() { c.Close() })
		if rec.Events != want || rec.DroppedBytes != 0 {
			t.Fatalf("round %d: recovery %+v, want %d events", round, rec, want)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		for range perRound {
			if _, err := c.Append(KindLog, "log", data); err != nil {
				t.Fatal(err)
			}
		}
		want += perRound
		// Close as soon as the group commit has written the records: its
		// fsync starts right after, outside the lock, so Close lands in it.
		deadline := time.Now().Add(10 * time.Second)
		for {
			cur, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if cur.Size() > st.Size() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the group commit never wrote", round)
			}
			runtime.Gosched()
		}
		if err := c.Close(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	rep, err := VerifyFile(path)
	if err != nil || !rep.OK() || rep.Events != want {
		t.Fatalf("VerifyFile = %+v, %v; want %d events", rep, err, want)
	}
}

// TestBufferedBytesFollowsTheHeap: what BufferedBytes reports for memory
// chains is what they hold on the heap, within a quarter, so the host's
// accounting of an actor's memory can trust it; a durable chain reports
// its write buffer while it has one and nothing once idle.
func TestBufferedBytesFollowsTheHeap(t *testing.T) {
	tests := map[string]struct {
		opts   Options
		events int
		data   int
	}{
		"unbounded, small events": {events: 5000, data: 100},
		"unbounded, large events": {events: 100, data: 40 << 10},
		"ring of 1000":            {opts: Options{Retain: 1000}, events: 3000, data: 200},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			const chains = 10
			data := bytes.Repeat([]byte("x"), tc.data)
			before := heapLive()
			cs := make([]*Chain, chains)
			var reported int64
			for i := range cs {
				cs[i] = NewMemory(tc.opts)
				for range tc.events {
					if _, err := cs[i].Append(KindLog, "log", data); err != nil {
						t.Fatal(err)
					}
				}
				reported += cs[i].BufferedBytes()
			}
			held := heapLive() - before
			runtime.KeepAlive(cs)
			t.Logf("reported %d KiB, heap grew %d KiB", reported>>10, held>>10)
			if reported < held*3/4 || reported > held*5/4 {
				t.Fatalf("BufferedBytes says %d bytes; the chains hold %d", reported, held)
			}
		})
	}
	t.Run("durable", func(t *testing.T) {
		c, _, err := Open(filepath.Join(t.TempDir(), FileName), Options{SyncInterval: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Append(KindLog, "log", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if n := c.BufferedBytes(); n < pendInitialSize {
			t.Fatalf("a chain that just appended reports %d bytes, less than its write buffer", n)
		}
		deadline := time.Now().Add(20 * time.Second)
		for c.BufferedBytes() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("an idle chain still reports %d bytes", c.BufferedBytes())
			}
			time.Sleep(time.Millisecond)
		}
	})
}
