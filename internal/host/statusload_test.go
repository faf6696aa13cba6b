package host

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/kubescheme"
)

// testStatusUnderMessageLoad: many actors answer requests continuously,
// so every head moves all the time; the Actors' status writes stay within
// the per-actor interval and the host-wide cap, counted by a watch (no
// controller runs here, so every change of an Actor in the window is the
// host's), and once the load stops every final head reaches the status
// within the time the two bounds allow.
func (s *suite) testStatusUnderMessageLoad(t *testing.T) {
	tests := map[string]struct {
		actors   int
		interval time.Duration
		perSec   float64
	}{
		// 6 actors at one write per 300ms want 20 writes/s: the interval
		// binds, the cap (1,000/s) does not.
		"per-actor interval binds": {actors: 6, interval: 300 * time.Millisecond, perSec: 1000},
		// 12 actors at one write per 100ms want 120 writes/s: the cap of
		// 8/s binds, and the heads coalesce while they wait for it.
		"host-wide cap binds": {actors: 12, interval: 100 * time.Millisecond, perSec: 8},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s.statusUnderLoad(t, tc.actors, tc.interval, tc.perSec)
		})
	}
}

func (s *suite) statusUnderLoad(t *testing.T, actors int, interval time.Duration, perSec float64) {
	g := NewWithT(t)
	h := s.startHost(t, func(c *Config) { c.StatusInterval, c.StatusWritesPerSecond = interval, perSec })
	wasm, err := os.ReadFile(filepath.Join("..", "actorhost", "testdata", "minimsg.wasm"))
	g.Expect(err).NotTo(HaveOccurred())
	src := h.s.urlSource(wasm)
	names := make([]string, actors)
	for i := range names {
		names[i] = fmt.Sprintf("busy-%d", i)
		h.create(names[i], v1alpha1.ActorSpec{Component: *src})
		h.assign(names[i], h.pod, 1)
	}
	for _, n := range names {
		h.waitReason(n, v1alpha1.ReasonRunning, 60*time.Second)
	}

	// Count every change of the test's Actors from here on.
	scheme, err := kubescheme.New()
	g.Expect(err).NotTo(HaveOccurred())
	wc, err := client.NewWithWatch(s.env.Config, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := contextWithCleanup(t)
	w, err := wc.Watch(ctx, &v1alpha1.ActorList{}, client.InNamespace(h.ns))
	g.Expect(err).NotTo(HaveOccurred())
	defer w.Stop()
	var (
		mu       sync.Mutex
		counting = true
		writes   = map[string]int{}
		watched  = make(chan struct{})
	)
	go func() {
		defer close(watched)
		for ev := range w.ResultChan() {
			a, ok := ev.Object.(*v1alpha1.Actor)
			if !ok || ev.Type != watch.Modified {
				continue
			}
			mu.Lock()
			if counting {
				writes[a.Name]++
			}
			mu.Unlock()
		}
	}()
	// (The watch starts with the Actors' current state, as ADDED events,
	// which are not counted.)

	// The load: one requester per actor, each asking every pace (or as
	// soon as it is answered, when that is later), until the window
	// closes: every head moves hundreds of times a second, and the two
	// cores of a loaded machine keep room for the host's status writes.
	const window, pace = 6 * time.Second, 4 * time.Millisecond
	var handled atomic.Int64
	loadCtx, stopLoad := context.WithCancel(ctx)
	var load sync.WaitGroup
	for _, n := range names {
		load.Go(func() {
			d := actorhost.Delivery{From: actorhost.Sender{External: "load-test"}, Target: h.ns + "/" + n, Msg: []byte("e")}
			tick := time.NewTicker(pace)
			defer tick.Stop()
			for {
				if _, err := h.host.engine.Request(loadCtx, d); err == nil {
					handled.Add(1)
				}
				select {
				case <-loadCtx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	begin := time.Now()
	writesBefore := counterValue(h.host.metrics, "ok")
	// A measurement window, not a wait for something to happen.
	<-time.After(window)
	mu.Lock()
	counting = false
	took := time.Since(begin)
	counted := writes
	writes = nil
	mu.Unlock()
	hostWrites := counterValue(h.host.metrics, "ok") - writesBefore
	stopLoad()
	load.Wait()
	stopped := time.Now()

	total := 0
	for _, n := range names {
		total += counted[n]
	}
	minutes := took.Minutes()
	t.Logf("%d actors handled %d requests in %s; %d status writes (host metric %v): %.0f writes/actor/minute (bound %.0f), %.1f writes/s host-wide (bound %g)",
		actors, handled.Load(), took.Round(time.Millisecond), total, hostWrites,
		float64(total)/float64(actors)/minutes, time.Minute.Seconds()/interval.Seconds(), float64(total)/took.Seconds(), perSec)
	g.Expect(handled.Load()).To(BeNumerically(">", int64(5*total)), "the heads moved far more often than they were written")
	// Per actor: one write per interval, plus one for the window's edges.
	perActor := int(took/interval) + 2
	for _, n := range names {
		g.Expect(counted[n]).To(BeNumerically("<=", perActor), "writes of %s in %s (interval %s)", n, took, interval)
	}
	g.Expect(total).To(BeNumerically(">=", 1), "the heads were published during the load")
	// Host-wide: the rate and its burst (a second's worth), plus one for
	// the window's edges.
	g.Expect(float64(total)).To(BeNumerically("<=", perSec*took.Seconds()+max(1, perSec)+1))

	// The final heads reach the status: within an interval, the time the
	// cap needs for one write per actor, and slack for a loaded machine.
	settle := interval + time.Duration(float64(actors)/min(perSec, float64(actors)/interval.Seconds())*float64(time.Second)) + 10*time.Second
	g.Eventually(func() []string {
		var behind []string
		for _, n := range names {
			if st, engine := h.get(n).Status.Chain.Length, h.headLength(n); st != engine {
				behind = append(behind, fmt.Sprintf("%s: status %d, chain %d", n, st, engine))
			}
		}
		return behind
	}).WithTimeout(settle).WithPolling(50*time.Millisecond).Should(BeEmpty(), "final heads")
	t.Logf("every final head was in the status %s after the load stopped (bound %s)", time.Since(stopped).Round(time.Millisecond), settle)
	cancel()
	<-watched
}

// headLength is the length of name's chain as its running actor has it.
func (h *harness) headLength(name string) int64 {
	h.host.mu.Lock()
	r := h.host.runs[h.key(name)]
	h.host.mu.Unlock()
	if r == nil {
		return -1
	}
	r.mu.Lock()
	a := r.actor
	r.mu.Unlock()
	if a == nil {
		return -1
	}
	_, length := a.Head()
	return int64(length)
}
