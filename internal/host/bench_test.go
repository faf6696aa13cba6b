package host

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/troupe-dev/troupe/api/v1alpha1"
)

// BenchmarkAssignToReady measures one host taking assignments: each
// iteration assigns a batch of 100 small actors at once (the controller's
// status and label writes, four writers) and waits until all are Ready.
// It reports the assignment-to-Ready latency (p50, p99, as a watch on the
// API server sees it), the batch's wall time, and the host
// process's heap per running actor. Run it with -benchtime=Nx for N
// batches on the same host (10x: 1,000 actors).
func BenchmarkAssignToReady(b *testing.B) {
	const batch = 100
	s := newSuite(b)
	h := s.startHost(b)
	src := h.wasmConfigMap("bench-wasm", testdata(b, "ok.wasm"))
	wc, err := client.NewWithWatch(s.env.Config, client.Options{Scheme: s.env.Scheme})
	if err != nil {
		b.Fatal(err)
	}
	var latencies []time.Duration
	var wall time.Duration
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	total := 0
	b.ResetTimer()
	for i := range b.N {
		names := make([]string, batch)
		inBatch := map[string]bool{}
		for j := range names {
			inBatch[fmt.Sprintf("a%d-%d", i, j)] = true
			names[j] = fmt.Sprintf("a%d-%d", i, j)
			h.create(names[j], v1alpha1.ActorSpec{Component: *src})
		}
		assigned := make(map[string]time.Time, batch)
		var mu sync.Mutex
		begin := time.Now()
		var wg sync.WaitGroup
		work := make(chan string)
		for range 4 {
			wg.Go(func() {
				for name := range work {
					h.assign(name, h.pod, 1)
					mu.Lock()
					assigned[name] = time.Now()
					mu.Unlock()
				}
			})
		}
		ready := map[string]time.Time{}
		done := make(chan struct{})
		w, err := wc.Watch(h.ctx(), &v1alpha1.ActorList{}, client.InNamespace(h.ns))
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			defer close(done)
			defer w.Stop()
			timeout := time.After(5 * time.Minute)
			for len(ready) < batch {
				select {
				case ev, ok := <-w.ResultChan():
					if !ok {
						return
					}
					a, isActor := ev.Object.(*v1alpha1.Actor)
					if !isActor || !inBatch[a.Name] {
						continue
					}
					if _, seen := ready[a.Name]; !seen && meta.IsStatusConditionTrue(a.Status.Conditions, v1alpha1.ConditionReady) {
						ready[a.Name] = time.Now()
					}
				case <-timeout:
					return
				}
			}
		}()
		for _, n := range names {
			work <- n
		}
		close(work)
		wg.Wait()
		<-done
		wall += time.Since(begin)
		for _, n := range names {
			r, ok := ready[n]
			if !ok {
				b.Fatalf("actor %s never became Ready", n)
			}
			// Ready can be seen before the label write returns (the host
			// may react to the status write): count that as zero.
			latencies = append(latencies, max(0, r.Sub(assigned[n])))
		}
		total += batch
	}
	b.StopTimer()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[int(p*float64(len(latencies)-1))] }
	b.ReportMetric(float64(pct(0.50).Milliseconds()), "p50-ms")
	b.ReportMetric(float64(pct(0.99).Milliseconds()), "p99-ms")
	b.ReportMetric(wall.Seconds()/float64(b.N), "s/batch")
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(total), "heap-B/actor")
	b.ReportMetric(0, "ns/op")
}
