//go:build unix

package actorhost

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

// processCPU is the CPU time the process has used, user and system; the
// benchmarks report it per message, a figure the machine's load does not
// inflate as it does the wall-clock time.
func processCPU(t testing.TB) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// idleCPU is the least CPU time the process used over one of rounds
// windows of d (noise only adds).
func idleCPU(t testing.TB, d time.Duration, rounds int) time.Duration {
	t.Helper()
	var low time.Duration
	for i := range rounds {
		before := processCPU(t)
		time.Sleep(d) // a measurement window, not a wait for something
		if used := processCPU(t) - before; i == 0 || used < low {
			low = used
		}
	}
	return low
}

// TestIdleActorsCPU (make test-long): 10,000 idle reachable actors cost at
// most 1% of a core, measured as the process's CPU time (getrusage) over a
// window against the same engine before they started; and, like 100 of them
// in the normal suite, no goroutine and no allocation. The actors are the
// minimal WAT one: Go actors cost MiBs each (issue 15), and their chains are
// in memory, since 10,000 durable chains would need more descriptors than
// a test may assume (one open file each).
func TestIdleActorsCPU(t *testing.T) {
	if !longTests() {
		t.Skip("starts 10,000 actors: make test-long")
	}
	const n = 10000
	const window = 5 * time.Second
	e, _ := newTestEngine(t)
	runtime.GC()
	base := idleCPU(t, window, 3)
	checkIdleReachable(t, e, n, time.Second, func(int) ActorConfig { return ActorConfig{} })
	runtime.GC()
	with := idleCPU(t, window, 3)
	share := float64(with-base) / float64(window)
	t.Logf("%d idle actors: %s of CPU over %s (%s with none): %.3f%% of a core", n, with, window, base, 100*share)
	if share > 0.01 {
		t.Errorf("%d idle actors use %.2f%% of a core (%s over %s, %s with none): the target is at most 1%%",
			n, 100*share, with, window, base)
	}
}
