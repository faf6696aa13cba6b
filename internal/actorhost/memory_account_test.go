package actorhost

import (
	"context"
	"errors"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/memlimit"
	"github.com/troupe-dev/troupe/internal/testutil"
	"github.com/troupe-dev/troupe/internal/textutil"
)

// settled returns the process's resident set and live heap once garbage is
// collected and returned to the OS, so that two readings differ by what is
// really held in between.
func settled(t testing.TB) (rss, heap uint64) {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	rss, ok, err := memlimit.ResidentBytes()
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Skip("no /proc/self/statm here")
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return rss, ms.HeapAlloc
}

// TestMemoryAccountingMatchesReality: what the engine accounts for each
// actor is what the process really holds for it. N actors of a Go example
// (examples/hello, durable chains) and of a small WAT actor are started in
// one process; per actor:
//   - the instance's and buffers' estimate is the live heap they grew,
//     within a quarter;
//   - what is resident (the resident linear memory plus that estimate) is
//     the RSS they grew, within a quarter;
//   - what the budget holds for them (committed linear memory, not only
//     the touched part, less the image pages they share) is never less
//     than the PSS they grew.
func TestMemoryAccountingMatchesReality(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("starts dozens of Go actors, and compares with RSS")
	}
	tests := map[string]struct {
		wasm   func(t *testing.T) []byte
		actors int
		tick   time.Duration
	}{
		"go hello":          {wasm: func(t *testing.T) []byte { return testutil.BuildExample(t, "hello") }, actors: 40},
		"small wat":         {wasm: func(t *testing.T) []byte { return readWasm(t, "counter") }, actors: 400},
		"small ticking wat": {wasm: func(t *testing.T) []byte { return readWasm(t, "tick") }, actors: 400, tick: time.Hour},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			budget := NewMemoryBudget(1 << 40)
			e, err := NewEngine(context.Background(), EngineOptions{NoDiskCache: true, SystemInfo: fixedSystemInfo{}, Version: "test", MemoryBudget: budget})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close(context.Background())
			c, err := e.Compile(context.Background(), tc.wasm(t))
			if err != nil {
				t.Fatal(err)
			}
			// One actor first, so the component's shared state exists
			// before the baseline.
			start(t, e, ActorConfig{Name: "first", Component: c, Dir: t.TempDir(), InitialState: []byte(`{"count":0}`)})
			rss0, heap0 := settled(t)
			roll0 := readRollup(t)
			actors := make([]*Actor, tc.actors)
			for i := range actors {
				actors[i] = start(t, e, ActorConfig{Name: "a", Component: c, Dir: t.TempDir(), InitialState: []byte(`{"count":0}`), TickInterval: tc.tick})
			}
			e.RefreshMemory() // the buffers' figures into the budget
			rss1, heap1 := settled(t)
			roll1 := readRollup(t)
			st := e.RefreshMemory()
			n := uint64(tc.actors)
			var linRes, own, held uint64
			for _, a := range actors {
				u := a.MemoryUsage()
				linRes += u.LinearResident
				own += u.Instance + u.Buffers
				held += u.Linear + u.Instance + u.Buffers
			}
			reserved := held / n
			rss, heap := (rss1-rss0)/n, (heap1-heap0)/n
			resident := (linRes + own) / n
			pss := (max(roll1.pss, roll0.pss) - roll0.pss) / n
			t.Logf("per actor: RSS grew %s (PSS %s), heap %s; accounted: instance+buffers %s, resident %s, reserved in the budget %s (linear charged %s, resident %s); %d actors accounted",
				textutil.FormatBytes(rss), textutil.FormatBytes(pss), textutil.FormatBytes(heap), textutil.FormatBytes(own/n), textutil.FormatBytes(resident), textutil.FormatBytes(reserved),
				textutil.FormatBytes(st.Linear/uint64(st.Actors)), textutil.FormatBytes(linRes/n), st.Actors)
			// Within a quarter, or a few KiB for small actors: the heap
			// counts objects, and RSS whole pages, some of them kept
			// (half used) from earlier tests.
			within := func(what string, got, want, floor uint64) {
				t.Helper()
				slack := max(want/4, floor)
				if got+slack < want || got > want+slack {
					t.Errorf("%s: accounted %s per actor, really %s", what, textutil.FormatBytes(got), textutil.FormatBytes(want))
				}
			}
			within("instance and buffers vs the heap", own/n, heap, 4<<10)
			within("resident vs RSS", resident, rss, 24<<10)
			// RSS counts a page of a shared image once per actor mapping
			// it; PSS divides it among them, which is what the host
			// really gives each (the budget charges the image itself
			// once, with the code).
			if reserved < pss {
				t.Errorf("the budget holds %s per actor, less than the %s (PSS) each really takes", textutil.FormatBytes(reserved), textutil.FormatBytes(pss))
			}
		})
	}
}

// TestStoppedActorsGiveMemoryBack: after N Go actors ran and stopped, and
// their component went unused, everything returns: the linear memories are
// unmapped, the budget holds nothing for them, the compiled code is closed,
// and once the heap is collected the process's RSS is back near where it
// was before they started (issue 10: 603 MB stayed after 200 actors were
// deleted from a host).
func TestStoppedActorsGiveMemoryBack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts dozens of Go actors")
	}
	const actors = 40
	wasm := testutil.BuildExample(t, "hello")
	budget := NewMemoryBudget(1 << 40)
	e, err := NewEngine(context.Background(), EngineOptions{NoDiskCache: true, SystemInfo: fixedSystemInfo{}, Version: "test", MemoryBudget: budget})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	maps0 := liveMappings.Load()
	code0 := e.codeHeld.Load()
	rss0, heap0 := settled(t)
	c, err := e.Compile(context.Background(), wasm)
	if err != nil {
		t.Fatal(err)
	}
	code := e.codeHeld.Load() - code0
	// Not start(): its cleanup would keep the actors, and through them
	// the compiled code, reachable until the test ends.
	var as []*Actor
	for range actors {
		a, err := e.Start(context.Background(), ActorConfig{Name: "hello", Component: c, Dir: t.TempDir(), InitialState: []byte(`{"count":0}`)})
		if a != nil {
			as = append(as, a)
		}
		if err != nil {
			for _, a := range as {
				_ = a.Stop(context.Background(), "test failed")
			}
			t.Fatal(err)
		}
	}
	e.RefreshMemory()
	rss1, _ := settled(t)
	for _, a := range as {
		if err := a.Stop(context.Background(), "test"); err != nil {
			t.Fatal(err)
		}
	}
	if n := liveMappings.Load() - maps0; n != 0 {
		t.Fatalf("%d linear memories still mapped", n)
	}
	if held := budget.Used() - e.codeHeld.Load(); held != 0 {
		t.Fatalf("the budget holds %d bytes for stopped actors", held)
	}
	if n := e.ReleaseIdleComponents(context.Background(), 0); n != 1 {
		t.Fatalf("released %d idle components, want the one", n)
	}
	if _, err := e.Start(context.Background(), ActorConfig{Name: "late", Component: c}); !errors.Is(err, ErrComponentReleased) {
		t.Fatalf("starting a released component: %v", err)
	}
	// As a host forgets its runs: nothing refers to the code any more.
	as, c = nil, nil
	// The compiled code is unmapped by a finalizer: collect until it is.
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		e.RefreshMemory()
		if e.codeHeld.Load() <= code0+code/10 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if left := e.codeHeld.Load(); left > code0+code/10 {
		t.Fatalf("compiled code still mapped: %s, %s before the component (it compiled to %s)", textutil.FormatBytes(left), textutil.FormatBytes(code0), textutil.FormatBytes(code))
	}
	rss2, heap2 := settled(t)
	t.Logf("RSS %s before, %s with %d actors, %s after (heap %s before, %s after); compiled code %s",
		textutil.FormatBytes(rss0), textutil.FormatBytes(rss1), actors, textutil.FormatBytes(rss2), textutil.FormatBytes(heap0), textutil.FormatBytes(heap2), textutil.FormatBytes(code))
	if !raceEnabled && rss2 > rss0+(rss1-rss0)/10 {
		t.Fatalf("RSS is %s after the actors stopped: more than a tenth of the %s they took is still held (%s before)",
			textutil.FormatBytes(rss2), textutil.FormatBytes(rss1-rss0), textutil.FormatBytes(rss0))
	}
}
