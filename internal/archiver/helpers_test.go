package archiver

import (
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"

	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/limits"
	"github.com/troupe-dev/troupe/internal/objstore"
	"github.com/troupe-dev/troupe/internal/s3test"
)

const actorID = "5f0c2a9e-7d1b-4c3e-8a2f-1b2c3d4e5f60"

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// countingStore counts the requests made of a store, by kind.
type countingStore struct {
	objstore.Store
	puts, gets, lists atomic.Int64
}

func (c *countingStore) Put(ctx context.Context, key string, r io.Reader, size int64, ifAbsent bool) error {
	c.puts.Add(1)
	return c.Store.Put(ctx, key, r, size, ifAbsent)
}

func (c *countingStore) Get(ctx context.Context, key string, max int64) ([]byte, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, key, max)
}

func (c *countingStore) List(ctx context.Context, prefix string) ([]string, error) {
	c.lists.Add(1)
	return c.Store.List(ctx, prefix)
}

func (c *countingStore) requests() int64 { return c.puts.Load() + c.gets.Load() + c.lists.Load() }

func newStore(t testing.TB) (*s3test.Server, *countingStore) {
	t.Helper()
	srv := s3test.Start(t)
	return srv, &countingStore{Store: srv.Bucket(t, "troupe/archive")}
}

func newEngine(t testing.TB) *actorhost.Engine {
	t.Helper()
	e, err := actorhost.NewEngine(context.Background(), actorhost.EngineOptions{NoDiskCache: true, Logger: logr.Discard(), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

var (
	tickOnce sync.Once
	tickWasm []byte
)

// startTicker starts testdata's ticking actor (internal/actorhost's
// tick.wat) on dir, counting its ticks in its state.
func startTicker(t testing.TB, e *actorhost.Engine, dir string, every time.Duration) *actorhost.Actor {
	t.Helper()
	return startTickerID(t, e, dir, actorID, every)
}

// startTickerID is startTicker for the actor id.
func startTickerID(t testing.TB, e *actorhost.Engine, dir, id string, every time.Duration) *actorhost.Actor {
	t.Helper()
	tickOnce.Do(func() {
		var err error
		if tickWasm, err = os.ReadFile(filepath.Join("..", "actorhost", "testdata", "tick.wasm")); err != nil {
			t.Fatal(err)
		}
	})
	c, err := e.Compile(context.Background(), tickWasm)
	if err != nil {
		t.Fatal(err)
	}
	init := make([]byte, 16)
	init[0] = 'c'
	a, err := e.Start(context.Background(), actorhost.ActorConfig{ID: id, Name: "ticker", Component: c, Dir: dir,
		InitialState: init, TickInterval: max(every, limits.MinTickInterval)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background(), "test over") })
	return a
}

func ticks(state []byte) uint32 {
	if len(state) < 16 {
		return 0
	}
	return binary.LittleEndian.Uint32(state[4:])
}

// statuses collects what a shipper reports.
type statuses struct {
	mu  sync.Mutex
	all []Status
}

func (s *statuses) report(st Status) {
	s.mu.Lock()
	s.all = append(s.all, st)
	s.mu.Unlock()
}

func (s *statuses) last() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.all) == 0 {
		return Status{}
	}
	return s.all[len(s.all)-1]
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newArchiver(t testing.TB, o Options) *Archiver {
	t.Helper()
	if o.Logger.GetSink() == nil {
		if tt, ok := t.(*testing.T); ok {
			o.Logger = testr.New(tt)
		} else {
			o.Logger = logr.Discard()
		}
	}
	ar, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ar.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return ar
}

func claim(t testing.TB, st objstore.Store, epoch int64) *archive.Writer {
	t.Helper()
	w, err := archive.Claim(testCtx(t), st, archive.ClaimOptions{ActorID: actorID, Epoch: epoch, Host: "host-a", Node: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// archived is the length of the history the archive holds.
func archived(t testing.TB, st objstore.Store) uint64 {
	t.Helper()
	h, err := archive.Resolve(testCtx(t), st, actorID)
	if err != nil {
		return 0
	}
	if tip := h.Tip(); tip != nil {
		return tip.Segment.Length
	}
	return 0
}
