package integration

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/controllers"
)

var scale = flag.Bool("integration.scale", false, "run the scale measurements (TestScale); TROUPE_SCALE=1 does too")

// scaleWindow is how long the steady state is watched; TROUPE_SCALE_WINDOW
// (a Go duration) overrides the minute.
func scaleWindow(t *testing.T) time.Duration {
	if v := os.Getenv("TROUPE_SCALE_WINDOW"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("TROUPE_SCALE_WINDOW: %v", err)
		}
		return d
	}
	return time.Minute
}

// scaleClusterOptions are production's settings where they matter to the
// figures: 15s leases, status written at most once a second per actor.
var scaleClusterOptions = clusterOptions{leaseDuration: 15 * time.Second, statusInterval: time.Second}

// TestScale measures what DESIGN.md sets targets for, with a manager and two
// hosts in this process against envtest on this machine: apply-to-Ready
// latency (p50, p99) of 100 and 1,000 actors created at once, the time until
// all 1,000 are Ready, and the API requests per actor per minute at steady
// state, for idle actors and for actors that tick every second and record
// an event each time. The actors are the hand-written WAT modules of
// testdata/ (idle.wat, ticker.wat), delivered by ConfigMap. It logs the
// figures and asserts only that everything got Ready and stayed so.
func TestScale(t *testing.T) {
	if !*scale && os.Getenv("TROUPE_SCALE") != "1" {
		t.Skip("scale measurements: run with -integration.scale or TROUPE_SCALE=1")
	}
	s := newSuite(t)
	window := scaleWindow(t)
	if v := os.Getenv("TROUPE_SCALE_WORKERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("TROUPE_SCALE_WORKERS: %v", err)
		}
		scaleClusterOptions.workers = n
	}
	t.Logf("GOMAXPROCS %d, steady-state window %s, manager workers %d (0: its default)", runtime.GOMAXPROCS(0), window, scaleClusterOptions.workers)
	t.Logf("baseline: an Actor status update takes %s on this control plane now (median of 50, one at a time)", s.writeLatency(t))
	t.Run("Ready100", func(t *testing.T) {
		c := s.newCluster(t, scaleClusterOptions)
		c.startHost("host-1")
		c.startHost("host-2")
		c.measureReady(t, 100, "idle", "idle.wasm", nil)
	})
	t.Run("ReadyOneAtATime100", func(t *testing.T) {
		c := s.newCluster(t, scaleClusterOptions)
		c.startHost("host-1")
		c.startHost("host-2")
		c.measureSequential(t, 100, "idle", "idle.wasm")
	})
	t.Run("Ready1000ThenIdleSteadyState", func(t *testing.T) {
		c := s.newCluster(t, scaleClusterOptions)
		c.startHost("host-1")
		c.startHost("host-2")
		c.measureReady(t, 1000, "idle", "idle.wasm", nil)
		c.measureSteadyState(t, 1000, window)
	})
	tickers := 1000
	if v := os.Getenv("TROUPE_SCALE_TICKERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("TROUPE_SCALE_TICKERS: %v", err)
		}
		tickers = n
	}
	t.Run(fmt.Sprintf("Ticking%dSteadyState", tickers), func(t *testing.T) {
		c := s.newCluster(t, scaleClusterOptions)
		c.startHost("host-1")
		c.startHost("host-2")
		c.measureReady(t, tickers, "ticker", "ticker.wasm", func(spec *v1alpha1.ActorSpec) {
			spec.TickInterval = &metav1.Duration{Duration: time.Second}
		})
		c.measureSteadyState(t, tickers, window)
	})
}

// measureReady creates n actors of module at once (32 writers) and reports
// the latency from each create to the first Ready=True (for its generation)
// the watch saw, and the time until all were Ready.
func (c *cluster) measureReady(t *testing.T, n int, prefix, module string, mutate func(*v1alpha1.ActorSpec)) {
	g := c.g()
	src := c.componentConfigMap(prefix, testdata(t, module), false)
	names := make([]string, n)
	created := make([]time.Time, n)
	for i := range n {
		names[i] = fmt.Sprintf("%s-%04d", prefix, i)
	}
	next := make(chan int)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range 32 {
		wg.Go(func() {
			for i := range next {
				spec := v1alpha1.ActorSpec{Component: *src}
				if mutate != nil {
					mutate(&spec)
				}
				a := &v1alpha1.Actor{ObjectMeta: metav1.ObjectMeta{Namespace: c.ns, Name: names[i]}, Spec: spec}
				created[i] = time.Now()
				if err := c.c.Create(context.Background(), a); err != nil {
					errs <- err
				}
			}
		})
	}
	mgrBefore, _ := c.mgrRequests.snapshot()
	hostsBefore := c.hostRequests()
	statsBefore := reconcileStatsOf(t, "actor")
	cpuBefore := readCPUSplit()
	endProfiles := burstProfiles(t, c.s.env.Config, fmt.Sprintf("ready%d-%s", n, prefix), 3+n/100)
	begin := time.Now()
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	createdAll := time.Since(begin)
	close(errs)
	for err := range errs {
		t.Fatalf("creating actors: %v", err)
	}
	g.Eventually(func() int {
		ready := 0
		for _, name := range names {
			if _, ok := c.obs.firstReady(name); ok {
				ready++
			}
		}
		return ready
	}).WithTimeout(10*time.Minute).WithPolling(100*time.Millisecond).Should(Equal(n), "actors seen Ready")
	cpu, wall := readCPUSplit().minus(cpuBefore), time.Since(begin)
	endProfiles()
	lat, toAssigned, toReady := make([]time.Duration, n), make([]time.Duration, n), make([]time.Duration, n)
	var last time.Time
	for i, name := range names {
		at, _ := c.obs.firstReady(name)
		assigned, ok := c.obs.firstAssigned(name)
		if !ok {
			assigned = at
		}
		lat[i], toAssigned[i], toReady[i] = at.Sub(created[i]), assigned.Sub(created[i]), at.Sub(assigned)
		if at.After(last) {
			last = at
		}
	}
	for _, l := range [][]time.Duration{lat, toAssigned, toReady} {
		slices.Sort(l)
	}
	t.Logf("%d %s actors created at once (creates took %s): apply->Ready p50 %s, p90 %s, p99 %s, max %s; all Ready %s after the first create",
		n, prefix, createdAll.Round(time.Millisecond), pct(lat, 50), pct(lat, 90), pct(lat, 99), lat[n-1].Round(time.Millisecond),
		last.Sub(begin).Round(time.Millisecond))
	t.Logf("  of which create->assigned (manager) p50 %s, p99 %s; assigned->Ready (host) p50 %s, p99 %s",
		pct(toAssigned, 50), pct(toAssigned, 99), pct(toReady, 50), pct(toReady, 99))
	t.Logf("  CPU until all were seen Ready (%s, %d cores): %s", wall.Round(time.Millisecond), runtime.NumCPU(), cpu)
	mgrAfter, _ := c.mgrRequests.snapshot()
	t.Logf("  requests of the manager until all were Ready: [%s]; of the hosts: [%s]",
		formatCounts(diffCounts(mgrBefore, mgrAfter)), formatCounts(diffCounts(hostsBefore, c.hostRequests())))
	st := reconcileStatsOf(t, "actor").minus(statsBefore)
	workers := c.opts.workers
	if workers == 0 {
		workers = controllers.DefaultWorkers
	}
	t.Logf("  the manager's reconciles: %d, %s each on average (%d workers), after %s in its queue on average",
		st.count, st.mean(st.work), workers, st.mean(st.queued))
	per := map[string]int{}
	var list v1alpha1.ActorList
	g.Expect(c.c.List(context.Background(), &list, client.InNamespace(c.ns))).To(Succeed())
	for _, a := range list.Items {
		per[a.Status.HostPod]++
	}
	t.Logf("placement: %v", per)
}

// writeLatency is the median time of one status update of an Actor, made
// one after the other: what a reconcile's write costs on this API server
// under this machine's load, to read the latencies against.
func (s *suite) writeLatency(t *testing.T) time.Duration {
	ctx := context.Background()
	ns := s.env.Namespace(t)
	a := &v1alpha1.Actor{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "baseline"},
		Spec: v1alpha1.ActorSpec{Component: v1alpha1.ComponentSource{Image: "registry.example/baseline:v1"}}}
	if err := s.env.Client.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	var took []time.Duration
	for i := range 50 {
		a.Status.ObservedGeneration = int64(i + 1)
		begin := time.Now()
		if err := s.env.Client.Status().Update(ctx, a); err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(begin))
	}
	slices.Sort(took)
	return took[len(took)/2].Round(10 * time.Microsecond)
}

// reconcileStats are a controller's reconciles so far, from
// controller-runtime's metrics (one registry for the process: take
// differences).
type reconcileStats struct {
	count        uint64
	work, queued float64 // seconds, summed
}

func (a reconcileStats) minus(b reconcileStats) reconcileStats {
	return reconcileStats{count: a.count - b.count, work: a.work - b.work, queued: a.queued - b.queued}
}

func (a reconcileStats) mean(sum float64) time.Duration {
	if a.count == 0 {
		return 0
	}
	return (time.Duration(sum / float64(a.count) * float64(time.Second))).Round(100 * time.Microsecond)
}

func reconcileStatsOf(t *testing.T, controller string) reconcileStats {
	mfs, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatalf("reading controller-runtime's metrics: %v", err)
	}
	var st reconcileStats
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			if m.Histogram == nil || !hasLabel(m.Label, "controller", controller) {
				continue
			}
			switch mf.GetName() {
			case "workqueue_work_duration_seconds":
				st.count, st.work = m.Histogram.GetSampleCount(), m.Histogram.GetSampleSum()
			case "workqueue_queue_duration_seconds":
				st.queued = m.Histogram.GetSampleSum()
			}
		}
	}
	return st
}

func hasLabel(labels []*dto.LabelPair, name, value string) bool {
	for _, l := range labels {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// hostRequests sums the request counts of the cluster's hosts.
func (c *cluster) hostRequests() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := map[string]int{}
	for _, h := range c.hosts {
		counts, _ := h.requests.snapshot()
		for k, v := range counts {
			total[k] += v
		}
	}
	return total
}

// measureSequential applies n actors of module one after the other, each
// once the one before is Ready, and reports the latency from each create to
// the first Ready=True the watch saw: a single kubectl apply on a warm
// cluster.
func (c *cluster) measureSequential(t *testing.T, n int, prefix, module string) {
	g := c.g()
	src := c.componentConfigMap(prefix, testdata(t, module), false)
	lat := make([]time.Duration, n)
	for i := range n {
		name := fmt.Sprintf("%s-%04d", prefix, i)
		a := &v1alpha1.Actor{ObjectMeta: metav1.ObjectMeta{Namespace: c.ns, Name: name}, Spec: v1alpha1.ActorSpec{Component: *src}}
		created := time.Now()
		g.Expect(c.c.Create(context.Background(), a)).To(Succeed())
		var at time.Time
		g.Eventually(func() bool {
			var ok bool
			at, ok = c.obs.firstReady(name)
			return ok
		}).WithPolling(2*time.Millisecond).Should(BeTrue(), name)
		lat[i] = at.Sub(created)
	}
	slices.Sort(lat)
	t.Logf("%d %s actors applied one at a time: apply->Ready p50 %s, p90 %s, p99 %s, max %s",
		n, prefix, pct(lat, 50), pct(lat, 90), pct(lat, 99), lat[n-1].Round(time.Millisecond))
}

// pct is the p-th percentile of sorted durations (nearest rank).
func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p+99)/100 - 1
	return sorted[max(i, 0)].Round(time.Millisecond)
}

// measureSteadyState counts the API requests of the manager and of the
// hosts over window, with n actors Ready, and reports them per actor per
// minute, by verb and resource.
func (c *cluster) measureSteadyState(t *testing.T, n int, window time.Duration) {
	g := c.g()
	mgrBefore, _ := c.mgrRequests.snapshot()
	hostsBefore := c.hostRequests()
	begin := time.Now()
	// A measurement window, not a wait for something to happen.
	<-time.After(window)
	elapsed := time.Since(begin)
	mgrAfter, _ := c.mgrRequests.snapshot()
	mgr := diffCounts(mgrBefore, mgrAfter)
	hostsTotal := diffCounts(hostsBefore, c.hostRequests())
	c.mu.Lock()
	hosts := len(c.hosts)
	c.mu.Unlock()
	sum := func(m map[string]int) int {
		total := 0
		for _, v := range m {
			total += v
		}
		return total
	}
	minutes := elapsed.Minutes()
	perActor := func(total int) string { return strconv.FormatFloat(float64(total)/float64(n)/minutes, 'f', 3, 64) }
	t.Logf("steady state over %s with %d actors: manager %d requests (%s per actor per minute) [%s]",
		elapsed.Round(time.Millisecond), n, sum(mgr), perActor(sum(mgr)), formatCounts(mgr))
	t.Logf("steady state over %s with %d actors: %d hosts %d requests (%s per actor per minute) [%s]",
		elapsed.Round(time.Millisecond), n, hosts, sum(hostsTotal), perActor(sum(hostsTotal)), formatCounts(hostsTotal))
	// They were Ready all along: the window measured what it says.
	var list v1alpha1.ActorList
	g.Expect(c.c.List(context.Background(), &list, client.InNamespace(c.ns))).To(Succeed())
	ready := 0
	var ages []time.Duration // since each status head was written
	now := time.Now()
	for i := range list.Items {
		a := &list.Items[i]
		if readyNow(a) && a.Status.Restarts == 0 && a.Status.Epoch == 1 {
			ready++
		}
		if a.Status.Chain != nil && a.Status.Chain.UpdatedAt != nil {
			ages = append(ages, now.Sub(a.Status.Chain.UpdatedAt.Time))
		}
	}
	if len(ages) > 0 {
		slices.Sort(ages)
		t.Logf("age of the status chain heads at the end (whole seconds in the API): p50 %s, max %s", pct(ages, 50), ages[len(ages)-1].Round(time.Millisecond))
	}
	g.Expect(ready).To(Equal(n), "actors Ready through the window, never restarted or moved")
}
