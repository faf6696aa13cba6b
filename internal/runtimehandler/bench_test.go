package runtimehandler

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/diskbudget"
)

// BenchmarkRoundTrip measures one guest->host->guest import call made from
// inside wasm (bench.wat loops n times), chain append included:
//
//	noop              a bare host function doing nothing: wazero's floor
//	get-current-time  clock + RuntimeOperation event in a memory chain
//	log-100B          level parse, UTF-8 check, LogEvent of a 100-byte message
//	log-100B-3secrets the same once the actor was served 3 secret values
//	                  that the message does not hold (the scrubbing scan)
//	log-100B-3secrets-hit  the same with one of them in the message (scan,
//	                  replacement and its copy)
//	*+budget          the same with a disk budget, the actor's and a node's,
//	                  checked on every append (never waiting): against the
//	                  row without it in the same run, its cost
//
// Besides the mean (ns/op), each reports the median of per-batch means
// (median-ns/op), the figure of the design's <= 1 µs target.
func BenchmarkRoundTrip(b *testing.B) {
	ctx := context.Background()
	mod := benchModule(b)
	three := []string{"sk-live-4f9a8b7c6d5e", "correct horse battery staple", "hunter22"}
	for _, bc := range []struct {
		name, export string
		secrets      []string
		budget       bool
	}{
		{"noop", "loop-noop", nil, false},
		{"get-current-time", "loop-time", nil, false},
		{"get-current-time+budget", "loop-time", nil, true},
		{"log-100B", "loop-log", nil, false},
		{"log-100B+budget", "loop-log", nil, true},
		{"log-100B-3secrets", "loop-log", three, false},
		{"log-100B-3secrets-hit", "loop-log", append(three[:2:2], "34567890"), false}, // the message is digits
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := chain.NewMemory(chain.Options{Retain: 4096}) // a real chain, bounded so b.N events fit
			var budget *diskbudget.Actor
			if bc.budget {
				budget = spareBudget()
			}
			a, err := NewActor(ActorOptions{ID: "bench", Name: "bench", Chain: c, Logger: logr.Discard(), Budget: budget})
			if err != nil {
				b.Fatal(err)
			}
			for _, v := range bc.secrets {
				a.rememberSecret(v) // as get-env of a secret variable does
			}
			actx := WithActor(ctx, a)
			fn := mod.ExportedFunction(bc.export)
			stack := make([]uint64, 1)
			run := func(n int) {
				stack[0] = uint64(n)
				if err := fn.CallWithStack(actx, stack); err != nil {
					b.Fatal(err)
				}
				if bc.export == "loop-log" && stack[0] != 0 {
					b.Fatal("log returned an error")
				}
			}
			run(1000) // warm up: grow the chain's ring and the event buffer
			b.ReportAllocs()
			b.ResetTimer()
			const batch = 1000
			var perBatch []float64
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
			if len(perBatch) > 0 {
				sort.Float64s(perBatch)
				b.ReportMetric(perBatch[len(perBatch)/2], "median-ns/op")
			}
			if _, n := c.Head(); bc.export != "loop-noop" && n < uint64(b.N) {
				b.Fatalf("%d events for %d calls", n, b.N)
			}
		})
	}
}

// benchModule instantiates bench.wat with the runtime's host functions and
// a bare "noop" one.
func benchModule(b *testing.B) api.Module {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	b.Cleanup(func() { r.Close(ctx) })
	_, err := r.NewHostModuleBuilder("bench").NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) {}), nil, nil).
		Export("noop").Instantiate(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := Instantiate(ctx, r); err != nil {
		b.Fatal(err)
	}
	mod, err := r.Instantiate(ctx, loadWasm(b, "bench.wasm"))
	if err != nil {
		b.Fatal(err)
	}
	return mod
}

// spareBudget is a disk budget, an actor's and a node's, far above what a
// benchmark reaches: checked on every append, never waited for.
func spareBudget() *diskbudget.Actor {
	huge := int64(1) << 50
	node := diskbudget.NewNode(diskbudget.NodeLimits{BytesPerSecond: huge, BurstBytes: huge, EventsPerSecond: huge, BurstEvents: huge}, diskbudget.NodeOptions{})
	return diskbudget.NewActor(diskbudget.Limits{BytesPerSecond: huge, BurstBytes: huge, EventsPerSecond: huge, BurstEvents: huge, MaxChainBytes: 1 << 62}, node, 0)
}

// BenchmarkBudgetOverhead is the disk budget's cost on the append path as
// a ratio measured in one run: two actors, one with a budget (the actor's
// and a node's, never waiting) and one without, make log-100B and
// get-current-time calls in alternating batches of 1000, so that a change
// of the machine's load hits both alike. It reports each one's median
// per-batch ns/op and budget/plain, the ratio of the two medians.
func BenchmarkBudgetOverhead(b *testing.B) {
	ctx := context.Background()
	mod := benchModule(b)
	for _, export := range []string{"loop-log", "loop-time"} {
		b.Run(export, func(b *testing.B) {
			type side struct {
				ctx      context.Context
				perBatch []float64
			}
			var sides [2]side // plain, budget
			for i := range sides {
				o := ActorOptions{ID: "bench", Name: "bench", Chain: chain.NewMemory(chain.Options{Retain: 4096}), Logger: logr.Discard()}
				if i == 1 {
					o.Budget = spareBudget()
				}
				a, err := NewActor(o)
				if err != nil {
					b.Fatal(err)
				}
				sides[i].ctx = WithActor(ctx, a)
			}
			fn := mod.ExportedFunction(export)
			stack := make([]uint64, 1)
			run := func(s *side, n int) time.Duration {
				stack[0] = uint64(n)
				start := time.Now()
				if err := fn.CallWithStack(s.ctx, stack); err != nil {
					b.Fatal(err)
				}
				if export == "loop-log" && stack[0] != 0 {
					b.Fatal("log returned an error")
				}
				return time.Since(start)
			}
			for i := range sides {
				run(&sides[i], 1000) // warm up
			}
			const batch = 1000
			b.ResetTimer()
			for done := 0; done < b.N; done += 2 * batch {
				for i := range sides {
					sides[i].perBatch = append(sides[i].perBatch, float64(run(&sides[i], batch).Nanoseconds())/batch)
				}
			}
			b.StopTimer()
			med := func(v []float64) float64 { sort.Float64s(v); return v[len(v)/2] }
			plain, budget := med(sides[0].perBatch), med(sides[1].perBatch)
			b.ReportMetric(plain, "plain-ns/call")
			b.ReportMetric(budget, "budget-ns/call")
			b.ReportMetric(budget/plain, "budget/plain")
		})
	}
}
