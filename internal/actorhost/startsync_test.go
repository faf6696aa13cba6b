package actorhost

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/fsync"
)

// maxStartSyncs is what a durable start may cost the disk: the syncs of
// its identity, its state slot, its directory and its chain (fresh), or of
// the chain's earlier events, the slot, the directory when the slot is new,
// and the chain (a restart). Each is an fsync the start waits on.
const maxStartSyncs = 4

// syncCounter counts the fsync.Data and fsync.Dir calls on paths under dir
// while it is on.
type syncCounter struct {
	dir string
	mu  sync.Mutex
	on  bool
	log []string
}

// countSyncs installs a sync counter for dir for the rest of the test.
func countSyncs(t testing.TB, dir string) *syncCounter {
	sc := &syncCounter{dir: filepath.Clean(dir)}
	restore := fsync.SetHook(func(k fsync.Kind, path string) {
		if path != sc.dir && !strings.HasPrefix(path, sc.dir+string(filepath.Separator)) {
			return
		}
		sc.mu.Lock()
		defer sc.mu.Unlock()
		if sc.on {
			sc.log = append(sc.log, fmt.Sprintf("%s %s", k, filepath.Base(path)))
		}
	})
	t.Cleanup(restore)
	return sc
}

// during counts the syncs fn makes.
func (sc *syncCounter) during(fn func()) []string {
	sc.mu.Lock()
	sc.on, sc.log = true, nil
	sc.mu.Unlock()
	fn()
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.on = false
	return sc.log
}

// TestDurableStartSyncs counts the syncs of durable starts: a fresh actor,
// its first restart (which creates the second state slot) and a later one.
// Not parallel: the sync hook is the process's.
func TestDurableStartSyncs(t *testing.T) {
	e, _ := newTestEngine(t)
	c := compile(t, e, "counter")
	dir := filepath.Join(t.TempDir(), "actor")
	sc := countSyncs(t, dir)
	for _, run := range []string{"fresh", "first restart", "second restart"} {
		var a *Actor
		var err error
		syncs := sc.during(func() {
			a, err = e.Start(context.Background(), ActorConfig{Name: "counter", Component: c, Dir: dir, InitialState: []byte("s"), TickInterval: -1})
		})
		if err != nil {
			t.Fatalf("%s: %v", run, err)
		}
		t.Logf("%s: %d syncs: %s", run, len(syncs), strings.Join(syncs, ", "))
		if len(syncs) > maxStartSyncs {
			t.Errorf("%s: %d syncs, want at most %d: %s", run, len(syncs), maxStartSyncs, strings.Join(syncs, ", "))
		}
		if err := a.Stop(context.Background(), "next run"); err != nil {
			t.Fatal(err)
		}
	}
	// A moved actor starts a new directory with a SegmentStart linking
	// the head it continues: no more than a fresh start.
	head, length := chainEnd(t, dir)
	moved := filepath.Join(t.TempDir(), "moved")
	msc := countSyncs(t, moved)
	var a *Actor
	var err error
	syncs := msc.during(func() {
		a, err = e.Start(context.Background(), ActorConfig{Name: "counter", Component: c, Dir: moved, TickInterval: -1,
			Continue: &ChainLink{Head: head, Length: length, Node: "node-a"}})
	})
	if err != nil {
		t.Fatalf("moved: %v", err)
	}
	t.Logf("moved: %d syncs: %s", len(syncs), strings.Join(syncs, ", "))
	if len(syncs) > maxStartSyncs {
		t.Errorf("moved: %d syncs, want at most %d: %s", len(syncs), maxStartSyncs, strings.Join(syncs, ", "))
	}
	if err := a.Stop(context.Background(), "test over"); err != nil {
		t.Fatal(err)
	}
}

// chainEnd is the head and length of the chain in dir.
func chainEnd(t *testing.T, dir string) (chain.Hash, uint64) {
	t.Helper()
	rep, err := chain.VerifyFile(actordir.ChainPath(dir))
	if err != nil || !rep.OK() {
		t.Fatalf("%+v, %v", rep, err)
	}
	return rep.Head, rep.Length
}

// BenchmarkDurableStart starts a small actor with a durable chain, fresh
// (a new directory each time) and restarting (one directory), and
// reports the syncs each start waits on (syncs/op, before issue 15: 9
// fresh, 5 or 6 restarting); the in-memory start is the baseline of the
// same run. The time is mostly the disk's: tmpfs hides it.
func BenchmarkDurableStart(b *testing.B) {
	for _, mode := range []string{"memory", "fresh", "restart"} {
		b.Run(mode, func(b *testing.B) {
			e, _ := newTestEngine(b)
			c := compile(b, e, "counter")
			root := b.TempDir()
			sc := countSyncs(b, root)
			var syncs int
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				cfg := ActorConfig{Name: "counter", Component: c, InitialState: []byte("s"), TickInterval: -1}
				switch mode {
				case "memory":
					cfg.MemoryChainRetain = 16
				case "fresh":
					cfg.Dir = filepath.Join(root, fmt.Sprint(i))
				case "restart":
					cfg.Dir = filepath.Join(root, "actor")
				}
				var a *Actor
				var err error
				syncs += len(sc.during(func() { a, err = e.Start(context.Background(), cfg) }))
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := a.Stop(context.Background(), "bench"); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(syncs)/float64(b.N), "syncs/op")
		})
	}
}
