package actorhost

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// longTests is true under `make test-long` (TROUPE_TEST_LONG=1).
func longTests() bool { return os.Getenv("TROUPE_TEST_LONG") != "" }

// startReachable starts n minimsg actors (no tick export: nothing but
// messages ever calls them) with cfg, and has each handle a send and a
// request, so that every mailbox has run (and ended) a drain goroutine and
// every chain has written since it started.
func startReachable(t testing.TB, e *Engine, n int, cfg func(i int) ActorConfig) []*Actor {
	t.Helper()
	ctx := context.Background()
	c := compile(t, e, "minimsg")
	actors := make([]*Actor, n)
	for i := range actors {
		ac := cfg(i)
		ac.Name, ac.Component = fmt.Sprintf("idle-%d", i), c
		actors[i] = start(t, e, ac)
	}
	for _, a := range actors {
		if err := e.Send(ctx, Delivery{From: cli, Target: a.ID(), Msg: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range actors {
		if resp, err := e.Request(ctx, Delivery{From: cli, Target: a.ID(), Msg: []byte("e")}); err != nil || string(resp) != "e" {
			t.Fatalf("request to %s: %q, %v", a.Name(), resp, err)
		}
	}
	return actors
}

// waitGoroutines polls until the process has at most want goroutines,
// failing with their stacks after 20s.
func waitGoroutines(t testing.TB, want int, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			var b strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Fatalf("%s: %d goroutines, want at most %d:\n%s", what, runtime.NumGoroutine(), want, b.String())
		}
		time.Sleep(time.Millisecond)
	}
}

// idleMallocs is the fewest heap allocations the process made over one
// of rounds windows of d: noise (another test's leftovers, the runtime)
// only ever adds, so the minimum is what the idle process itself costs.
func idleMallocs(d time.Duration, rounds int) uint64 {
	var low uint64
	for i := range rounds {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		time.Sleep(d) // a measurement window, not a wait for something
		runtime.ReadMemStats(&after)
		if n := after.Mallocs - before.Mallocs; i == 0 || n < low {
			low = n
		}
	}
	return low
}

// checkIdleReachable: n actors that are reachable (registered, a mailbox,
// a durable chain or a memory one) but idle add no goroutine and allocate
// nothing, measured against the same engine before they started.
// It returns the actors, still running.
func checkIdleReachable(t testing.TB, e *Engine, n int, window time.Duration, cfg func(i int) ActorConfig) []*Actor {
	t.Helper()
	// One actor first, for whatever the engine makes once (compiled
	// code, pools): not a cost per actor.
	warm := startReachable(t, e, 1, cfg)
	if err := warm[0].Stop(context.Background(), "warmed up"); err != nil {
		t.Fatal(err)
	}
	// Settled: the drain goroutines have ended, the chains' group-commit
	// timers gone quiet.
	runtime.GC()
	baseMallocs := idleMallocs(window, 3)
	base := runtime.NumGoroutine()
	actors := startReachable(t, e, n, cfg)
	waitGoroutines(t, base, fmt.Sprintf("%d idle reachable actors", n))
	runtime.GC()
	mallocs := idleMallocs(window, 3)
	t.Logf("%d idle reachable actors: %d allocations over %s (%d with none); goroutines %d (%d before)",
		n, mallocs, window, baseMallocs, runtime.NumGoroutine(), base)
	// An actor that allocated even once per window would add n.
	if mallocs > baseMallocs+uint64(n)/4 {
		t.Errorf("%d idle actors: %d allocations over %s, against %d with none: being reachable costs allocations",
			n, mallocs, window, baseMallocs)
	}
	return actors
}
