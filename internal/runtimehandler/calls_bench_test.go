package runtimehandler

import (
	"context"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/testutil"
)

// processCPU is the process's CPU time so far (every goroutine's: with
// close-on-context-done wazero starts one per call into the guest).
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// engineRuntime is a runtime configured as the engine's
// (internal/actorhost): the compiler, and close-on-context-done, which
// adds a watcher to every call into the guest and a check to every loop.
func engineRuntime(b *testing.B) wazero.Runtime {
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCloseOnContextDone(true))
	b.Cleanup(func() { r.Close(ctx) })
	return r
}

// BenchmarkStringCall measures runtime calls that hand a string back to a
// WAT guest, in the engine's runtime configuration (engineRuntime), made
// from inside wasm in batches of 1000, chain append included:
//
//	noop                    a bare host function: the floor, same run
//	get-current-time        a call returning a number
//	get-actor-name          the string through the guest's cabi_realloc
//	                        (bench.wat: the canonical ABI, a nested call)
//	get-actor-name+area     the same guest opting in to the result area
//	                        (area.wat): the string written there
//	log-100B                a 100-byte log line (no string back)
//
// It reports the mean, the median of the batches (median-ns/op) and the
// process's CPU time per call (cpu-ns/op, the watcher goroutines included).
func BenchmarkStringCall(b *testing.B) {
	ctx := context.Background()
	r := engineRuntime(b)
	if _, err := r.NewHostModuleBuilder("bench").NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) {}), nil, nil).
		Export("noop").Instantiate(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := Instantiate(ctx, r); err != nil {
		b.Fatal(err)
	}
	guests := map[string]api.Module{}
	for _, name := range []string{"bench", "area"} {
		mod, err := r.InstantiateWithConfig(ctx, loadWasm(b, name+".wasm"), wazero.NewModuleConfig().WithName(name+"-guest"))
		if err != nil {
			b.Fatal(err)
		}
		guests[name] = mod
	}
	for _, bc := range []struct{ name, guest, export string }{
		{"noop", "bench", "loop-noop"},
		{"get-current-time", "bench", "loop-time"},
		{"get-actor-name", "bench", "loop-name"},
		{"get-actor-name+area", "area", "loop-name"},
		{"log-100B", "bench", "loop-log"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := chain.NewMemory(chain.Options{Retain: 4096})
			a, err := NewActor(ActorOptions{ID: "bench", Name: "bench-actor", Chain: c, Logger: logr.Discard()})
			if err != nil {
				b.Fatal(err)
			}
			actx := WithActor(ctx, a)
			fn := guests[bc.guest].ExportedFunction(bc.export)
			stack := make([]uint64, 1)
			run := func(n int) {
				stack[0] = uint64(n)
				if err := fn.CallWithStack(actx, stack); err != nil {
					b.Fatal(err)
				}
			}
			run(1000) // warm up, and resolve the result area
			if bc.guest == "area" && a.area.cap == 0 {
				b.Fatal("the area guest's result area was not registered")
			}
			b.ReportAllocs()
			const batch = 1000
			var perBatch []float64
			cpu := processCPU(b)
			b.ResetTimer()
			for done := 0; done < b.N; {
				n := min(batch, b.N-done)
				start := time.Now()
				run(n)
				if n == batch {
					perBatch = append(perBatch, float64(time.Since(start).Nanoseconds())/batch)
				}
				done += n
			}
			b.StopTimer()
			b.ReportMetric(float64((processCPU(b)-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
			if len(perBatch) > 0 {
				sort.Float64s(perBatch)
				b.ReportMetric(perBatch[len(perBatch)/2], "median-ns/op")
			}
		})
	}
}

// sdkHost serves a testutil.Guest from the real handler.
type sdkHost struct{ a *Actor }

func (h sdkHost) Instantiate(ctx context.Context, r wazero.Runtime) error {
	_, err := Instantiate(ctx, r)
	return err
}

func (h sdkHost) Bind(ctx context.Context) context.Context { return WithActor(ctx, h.a) }

// BenchmarkGoGuestCall measures runtime calls made by a Go guest through
// the SDK (sdk/theater/testdata/abiactor's bench modes, a loop of b.N calls
// inside one init), served by the real handler with a memory chain, in a
// runtime configured like the engine's (testutil.StartGuest):
//
//	get-current-time        a number back: the baseline, same run
//	get-actor-name, get-env a string back, in the SDK's result area
//	*-realloc               the same with the area ignored by the host:
//	                        each string through cabi_realloc, as the
//	                        canonical ABI does (and as before the area)
//	log-100B                theater.Info of 100 bytes
//
// ns/op is wall time per call; cpu-ns/op the process's CPU time per call.
func BenchmarkGoGuestCall(b *testing.B) {
	wasm := testutil.BuildActor(b, "sdk/theater/testdata/abiactor")
	for _, bc := range []struct {
		name, op  string
		noArea    bool
		checkArea bool
	}{
		{"get-current-time", "time", false, false},
		{"get-actor-name", "actor-name", false, true},
		{"get-actor-name-realloc", "actor-name", true, false},
		{"get-env", "getenv", false, true},
		{"get-env-realloc", "getenv", true, false},
		{"log-100B", "log-100B", false, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			a, err := NewActor(ActorOptions{ID: "bench", Name: "bench-actor", Logger: logr.Discard(),
				Chain: chain.NewMemory(chain.Options{Retain: 4096}),
				Env:   MapEnv{"MODE": {Value: "bench:" + bc.op}, "GREETING": {Value: "hello"}}})
			if err != nil {
				b.Fatal(err)
			}
			a.noResultArea = bc.noArea
			g := testutil.StartGuest(b, wasm, sdkHost{a})
			ctx := context.Background()
			if _, _, err := g.Init(ctx, []byte("1000"), true, "bench"); err != nil { // warm up
				b.Fatal(err)
			}
			if bc.checkArea && a.area.cap == 0 {
				b.Fatal("the SDK's result area was not registered")
			}
			b.ReportAllocs()
			cpu := processCPU(b)
			b.ResetTimer()
			if _, _, err := g.Init(ctx, []byte(strconv.Itoa(b.N)), true, "bench"); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64((processCPU(b)-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}
