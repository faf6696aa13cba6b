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
				huge := int64(1) << 50
				node := diskbudget.NewNode(diskbudget.NodeLimits{BytesPerSecond: huge, BurstBytes: huge, EventsPerSecond: huge, BurstEvents: huge}, diskbudget.NodeOptions{})
				budget = diskbudget.NewActor(diskbudget.Limits{BytesPerSecond: huge, BurstBytes: huge, EventsPerSecond: huge, BurstEvents: huge, MaxChainBytes: 1 << 62}, node, 0)
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
