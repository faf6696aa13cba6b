package controllers

import (
	"fmt"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/envtestutil"
)

// BenchmarkPlaceActors measures placement against a real API server: b.N
// Actors created at once (8 clients) over two hosts, timed until every one
// is assigned. On a shared two-core machine the API server and etcd
// dominate; the figure bounds how fast a burst of Actors is placed.
func BenchmarkPlaceActors(b *testing.B) {
	env := envtestutil.Start(b)
	h := newHarness(b, env, harnessOptions{})
	h.host("host-a", h.node("a", nil), 1<<20)
	h.host("host-b", h.node("b", nil), 1<<20)
	g := NewWithT(b)
	b.ResetTimer()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range b.N {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			h.actor(fmt.Sprintf("actor-%06d", i))
		})
	}
	wg.Wait()
	g.Eventually(func() (int, error) {
		var list v1alpha1.ActorList
		if err := h.c.List(h.ctx, &list); err != nil {
			return 0, err
		}
		placed := 0
		for _, a := range list.Items {
			if a.Status.HostPod != "" {
				placed++
			}
		}
		return placed, nil
	}).WithTimeout(time.Duration(b.N)*100*time.Millisecond + time.Minute).WithPolling(20 * time.Millisecond).Should(Equal(b.N))
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "actors/s")
}
