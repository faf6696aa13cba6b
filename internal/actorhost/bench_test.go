package actorhost

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/troupe-dev/troupe/internal/diskbudget"
	"github.com/troupe-dev/troupe/internal/limits"
	"github.com/troupe-dev/troupe/internal/testutil"
	"github.com/troupe-dev/troupe/internal/wasmcheck"
)

// unthrottled is a disk budget far above anything a benchmark reaches: its
// checks run on every append, and never wait.
var unthrottled = diskbudget.Limits{BytesPerSecond: 1 << 50, BurstBytes: 1 << 50, EventsPerSecond: 1 << 50, BurstEvents: 1 << 50, MaxChainBytes: 1 << 62}

// BenchmarkRoundTrip measures a guest -> host -> guest call through the
// engine, chain append and disk budget (the actor's and a node's, never
// waiting) included: one Call of an exported loop that makes b.N runtime
// calls, so ns/op is the cost of one runtime call. Target: <= 1 us.
func BenchmarkRoundTrip(b *testing.B) {
	for _, chainKind := range []string{"memory", "durable"} {
		for _, fn := range []string{"loop-time", "loop-log"} {
			name := map[string]string{"loop-time": "get-current-time", "loop-log": "log-100B"}[fn]
			b.Run(name+"/"+chainKind+"-chain", func(b *testing.B) {
				node := diskbudget.NewNode(diskbudget.NodeLimits{BytesPerSecond: 1 << 50, BurstBytes: 1 << 50, EventsPerSecond: 1 << 50, BurstEvents: 1 << 50}, diskbudget.NodeOptions{})
				e, err := NewEngine(context.Background(), EngineOptions{NoDiskCache: true, SystemInfo: fixedSystemInfo{}, Version: "test", DiskBudget: node})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = e.Close(context.Background()) })
				budget := unthrottled
				cfg := ActorConfig{Name: "bench", Component: compile(b, e, "counter"), CallTimeout: limits.MaxCallTimeout,
					MemoryChainRetain: 4096, DiskBudget: &budget}
				if chainKind == "durable" {
					cfg.Dir = b.TempDir()
				}
				a := start(b, e, cfg)
				b.ReportAllocs()
				b.ResetTimer()
				if _, err := a.Call(context.Background(), fn, uint64(b.N)); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// BenchmarkWarmStart measures starting an actor whose module is compiled
// already: instantiate, _initialize, init, chain events (in memory).
// Targets: <= 1 ms for a small actor, <= 10 ms for a Go actor.
// go-hello-segments is the Go actor with its data segments left to wazero
// (no initial memory image): the baseline of go-hello, in the same run.
func BenchmarkWarmStart(b *testing.B) {
	modules := map[string]func(b *testing.B) []byte{
		"wat": func(b *testing.B) []byte { return readWasm(b, "minimal") },
		"go-hello": func(b *testing.B) []byte {
			if testing.Short() {
				b.Skip("builds examples/hello with the Go toolchain")
			}
			return testutil.BuildExample(b, "hello")
		},
	}
	modules["go-hello-segments"] = modules["go-hello"]
	for _, name := range []string{"wat", "go-hello", "go-hello-segments"} {
		b.Run(name, func(b *testing.B) {
			e, _ := newTestEngine(b)
			e.opts.keepDataSegments = name == "go-hello-segments"
			c, err := e.Compile(context.Background(), modules[name](b))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				a, err := e.Start(context.Background(), ActorConfig{Name: "bench", Component: c, MemoryChainRetain: 16})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := a.Stop(context.Background(), "bench"); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkIdleActorMemory instantiates batches of small actors and reports
// what each costs while idle: Go heap (the instance, the handler, the
// chain) plus the RAM its linear memory holds. Target: <= 64 KiB per actor.
func BenchmarkIdleActorMemory(b *testing.B) {
	const perBatch = 1000
	for _, chainKind := range []string{"memory", "durable"} {
		b.Run(chainKind+"-chain", func(b *testing.B) {
			e, _ := newTestEngine(b)
			c := compile(b, e, "minimal")
			var heapSum, linSum float64
			for range b.N {
				b.StopTimer()
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				b.StartTimer()
				actors := make([]*Actor, 0, perBatch)
				for range perBatch {
					cfg := ActorConfig{Name: "idle", Component: c, MemoryChainRetain: 16}
					if chainKind == "durable" {
						cfg.Dir = b.TempDir()
					}
					a, err := e.Start(context.Background(), cfg)
					if err != nil {
						b.Fatal(err)
					}
					actors = append(actors, a)
				}
				b.StopTimer()
				runtime.GC()
				runtime.ReadMemStats(&after)
				var lin uint64
				for _, a := range actors {
					lin += a.MemoryResidentBytes()
				}
				heapSum += float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / perBatch
				linSum += float64(lin) / perBatch
				for _, a := range actors {
					_ = a.Stop(context.Background(), "bench")
				}
				b.StartTimer()
			}
			b.ReportMetric(heapSum/float64(b.N), "heap-B/actor")
			b.ReportMetric(linSum/float64(b.N), "linmem-B/actor")
			b.ReportMetric((heapSum+linSum)/float64(b.N), "B/actor")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkTick measures one tick call through the engine: the call lock,
// lowering the 16-byte state with cabi_realloc, tick, lifting its result,
// cabi_post and, when the state changed, saving it and an ActorTick event.
// "idle" changes nothing (nothing recorded); "count" changes the state
// every tick (memory chain: no file; durable: the state is saved in a slot
// once per group commit, when the chain writes the ticks' events, however
// many ticks changed it: statefile.go).
func BenchmarkTick(b *testing.B) {
	for _, tc := range []struct {
		name    string
		mode    byte
		durable bool
	}{{"idle", 'i', false}, {"count/memory-chain", 'c', false}, {"count/durable-chain", 'c', true}} {
		b.Run(tc.name, func(b *testing.B) {
			e, _ := newTestEngine(b)
			// The loop never fires within the benchmark: ticks are driven here.
			cfg := ActorConfig{Name: "bench", Component: compile(b, e, "tick"), InitialState: tickState(tc.mode),
				TickInterval: time.Hour, MemoryChainRetain: 4096}
			if tc.durable {
				cfg.Dir = b.TempDir()
			}
			a := start(b, e, cfg)
			done := a.Done()
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if more, err := a.tick(ctx, done); !more || err != nil {
					b.Fatalf("tick: %v, %v", more, err)
				}
			}
		})
	}
}

// BenchmarkMemoryGrow measures memory.grow's accounting on its hot path:
// a linear memory grown a page at a time to 64 pages (as the Go runtime
// grows its heap), then freed, without a host budget and with one shared
// by the actors, alternately in the same loop so both see the same
// machine. It reports ns per grow of each and their ratio (budget/none).
func BenchmarkMemoryGrow(b *testing.B) {
	const pages = 64
	grow := func(budget *MemoryBudget) time.Duration {
		begin := time.Now()
		l := newMemoryLimiter(256, budget, nil)
		lm := allocateLinearMemory(l.limit, 0, l)
		for p := uint64(1); p <= pages; p++ {
			if lm.backing.Reallocate(p*wasmPageSize) == nil {
				b.Fatal("a grow within the limit was refused")
			}
		}
		lm.backing.Free()
		return time.Since(begin)
	}
	budget := NewMemoryBudget(1 << 40)
	var none, with time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			none += grow(nil)
			with += grow(budget)
		} else {
			with += grow(budget)
			none += grow(nil)
		}
	}
	n := float64(b.N * pages)
	b.ReportMetric(float64(none.Nanoseconds())/n, "ns/grow-none")
	b.ReportMetric(float64(with.Nanoseconds())/n, "ns/grow-budget")
	b.ReportMetric(float64(with)/float64(none), "budget/none")
	if budget.Used() != 0 {
		b.Fatalf("the budget holds %d bytes after every memory was freed", budget.Used())
	}
}

// BenchmarkCheckVersusCompile measures what the structural pre-check
// (wasmcheck.Check) costs beside the cold compile it guards, on the Go
// hello example: each iteration checks the module and compiles it in a
// fresh runtime (no cache, the engine's two compile workers). check-% is
// the check's share of the pair, the figure docs/performance.md quotes.
func BenchmarkCheckVersusCompile(b *testing.B) {
	if testing.Short() {
		b.Skip("builds examples/hello with the Go toolchain")
	}
	wasm := testutil.BuildExample(b, "hello")
	ctx := experimental.WithCompilationWorkers(context.Background(), compileWorkers)
	var checking, compiling time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := wasmcheck.Check(wasm, wasmcheck.Default); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		rt := wazero.NewRuntime(ctx)
		if _, err := rt.CompileModule(ctx, wasm); err != nil {
			b.Fatal(err)
		}
		compiling += time.Since(t1)
		checking += t1.Sub(t0)
		_ = rt.Close(ctx)
	}
	b.ReportMetric(float64(checking.Microseconds())/float64(b.N), "check-us/op")
	b.ReportMetric(float64(compiling.Microseconds())/float64(b.N), "compile-us/op")
	b.ReportMetric(100*float64(checking)/float64(checking+compiling), "check-%")
}
