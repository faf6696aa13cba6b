package host

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actorhost"
)

// BenchmarkCrossHostRequest measures an actor's request to an actor on
// another host (two in-process hosts, loopback mTLS, the router reading
// informers) against the baseline of the same request to an actor on its
// own host, in the same run. Each iteration is an external request to x
// on host a, whose handler asks the target and answers its response: the
// difference between the two is the cross-host hop. It reports p50 and
// p90; "parallel" reports the throughput of the host pair with 16
// requests in flight.
func BenchmarkCrossHostRequest(b *testing.B) {
	s := newSuite(b)
	ca := newPeerCA(b)
	noNodeBudget := func(c *Config) { c.Disk.BytesPerSecond, c.Disk.EventsPerSecond = -1, -1 }
	a := s.startHost(b, withPeer(b, ca, ""), noNodeBudget)
	bh := s.startHost(b, withPeer(b, ca, a.ns), noNodeBudget)
	bh.ns = a.ns
	wasm, err := os.ReadFile(filepath.Join("..", "actorhost", "testdata", "messenger.wasm"))
	if err != nil {
		b.Fatal(err)
	}
	// Chain budgets out of the way: what is measured is the delivery.
	spec := v1alpha1.ActorSpec{Component: *s.urlSource(wasm), Limits: v1alpha1.Limits{
		ChainEventsPerSecond: 1_000_000, ChainBurstEvents: 10_000_000, ChainBytesPerSecond: 1 << 30, ChainBurstBytes: 1 << 30}}
	a.run("x", spec, time.Minute)
	a.run("z", spec, time.Minute)
	bh.create("y", spec)
	bh.assign("y", bh.pod, 1)
	bh.waitReason("y", v1alpha1.ReasonRunning, time.Minute)
	d := func(target string) actorhost.Delivery {
		return actorhost.Delivery{From: actorhost.Sender{External: "bench"}, Target: a.ns + "/x", Msg: ask(target, "eping")}
	}
	one := func(b *testing.B, d actorhost.Delivery) {
		resp, err := a.host.engine.Request(context.Background(), d)
		if err != nil || string(resp) != "eping" {
			b.Fatalf("%q, %v", resp, err)
		}
	}
	latency := func(target string) func(b *testing.B) {
		return func(b *testing.B) {
			dl := d(target)
			for range 100 { // warm: connections, caches
				one(b, dl)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				begin := time.Now()
				one(b, dl)
				lat = append(lat, time.Since(begin))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds()), "p90-µs")
		}
	}
	throughput := func(target string) func(b *testing.B) {
		return func(b *testing.B) {
			dl := d(target)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			begin := time.Now()
			for range 16 {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						one(b, dl)
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(begin).Seconds(), "req/s")
		}
	}
	b.Run("in-process", latency("z"))
	b.Run("cross-host", latency("y"))
	b.Run("in-process-parallel", throughput("z"))
	b.Run("cross-host-parallel", throughput("y"))
}
