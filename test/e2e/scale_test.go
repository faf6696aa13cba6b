//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	theaterv1alpha1 "github.com/troupe-dev/troupe/api/v1alpha1"
)

// Environment of TestScaleOneHost (make test-e2e-scale sets both).
const (
	// scaleEnv is the number of actors; unset, the test skips.
	scaleEnv = "TROUPE_E2E_SCALE"
	// scaleHoldEnv is how long (a Go duration, default 3m) every actor must
	// stay Ready after the last one became Ready.
	scaleHoldEnv = "TROUPE_E2E_SCALE_HOLD"
)

const (
	scaleNS          = "troupe-e2e-scale"
	scaleConfigMap   = "hello-wasm"
	scaleModuleKey   = "hello.wasm.gz"
	hostContainer    = "host" // the chart's host container
	scaleWorkers     = 16     // Actors created at once
	scaleRampPoll    = 5 * time.Second
	scaleHoldPoll    = 10 * time.Second
	scaleDefaultHold = 3 * time.Minute
	// scaleStall fails the wait for Ready early when no more actors became
	// Ready for this long (e.g. the rest all InsufficientMemory): longer
	// than the chart's compileTimeout, the longest a first start may take.
	scaleStall = 5 * time.Minute
)

// scaleLabels mark everything the scale test creates in its namespace.
var scaleLabels = map[string]string{"app.kubernetes.io/part-of": "troupe-e2e-scale"}

// scaleReadyTimeout is how long n Actors may take from the first create
// until all are Ready.
func scaleReadyTimeout(n int) time.Duration { return 10*time.Minute + time.Duration(n)*time.Second }

// scaleDeleteTimeout is how long n Actors may take to be released after
// their deletion (each host flushes each chain first).
func scaleDeleteTimeout(n int) time.Duration {
	return 5*time.Minute + time.Duration(n)*200*time.Millisecond
}

// TestScaleOneHost is issue 15's requirement, on the local cluster: with the
// chart's defaults, N Go hello actors (TROUPE_E2E_SCALE, e.g. 1000) all
// become Ready on one host and stay Ready (TROUPE_E2E_SCALE_HOLD, default
// 3m), with the host's memory within its limit. It installs the chart
// (release troupe in troupe-system, as TestTroupe does, but with the
// chart's default values but for the image under test and the disk
// watermark; no memory setting), creates the N Actors from one ConfigMap
// module, 16 at a time, and polls them with one LIST per poll; the host's
// working set comes from the kubelet's summary API through the API server.
// Everything it made is deleted at the end, the Actors first (each is
// released after its host flushed its chain), the CRD and the namespaces
// last, so that TestTroupe can run after it. Skipped unless
// TROUPE_E2E_SCALE is set: make test-e2e-scale.
func TestScaleOneHost(t *testing.T) {
	n, hold := scaleParams(t)
	e := newEnv(t)
	sc := &scaleRun{suite: &suite{env: e}, n: n, hold: hold}
	sc.checkTimeBudget(t)
	sc.connect(t)
	sc.preflight(t)
	var ns corev1.Namespace
	if err := sc.kube.Get(t.Context(), client.ObjectKey{Name: scaleNS}, &ns); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace %s exists already (or can't be read: %v): remove it first", scaleNS, err)
	}
	module := sc.buildHello(t)

	// Cleanups run last-in first-out: the dump of a failure first, then
	// the teardown.
	t.Cleanup(func() { sc.teardown(t) })
	t.Cleanup(func() {
		if t.Failed() {
			sc.dump(t)
		}
	})
	sc.install(t)
	sc.createModule(t, module)
	sc.createActors(t)
	sc.waitReady(t)
	sc.logHostMetrics(t, "when all were Ready")
	sc.holdReady(t)
	sc.logHostMetrics(t, "after the hold")
	sc.summary(t)
}

// scaleParams reads TROUPE_E2E_SCALE and TROUPE_E2E_SCALE_HOLD; the test
// skips without the first.
func scaleParams(t *testing.T) (int, time.Duration) {
	t.Helper()
	v := os.Getenv(scaleEnv)
	if v == "" {
		t.Skipf("%s is not set: the scale test runs only when asked for a number of actors (make test-e2e-scale)", scaleEnv)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a number of actors, at least 1", scaleEnv, v)
	}
	hold := scaleDefaultHold
	if h := os.Getenv(scaleHoldEnv); h != "" {
		if hold, err = time.ParseDuration(h); err != nil || hold < 0 {
			t.Fatalf("%s=%q: want a Go duration such as 3m", scaleHoldEnv, h)
		}
	}
	return n, hold
}

// scaleRun is what the scale test learns as it goes.
type scaleRun struct {
	*suite
	n    int
	hold time.Duration

	cs           *kubernetes.Clientset // the kubelet's summary API, through the API server
	host         corev1.Pod            // the one host pod, as it was after the install
	hostRestarts int32                 // its container's restartCount then
	limit        int64                 // its container's memory limit, bytes
	forwarded    string                // a port-forward to its /metrics; "" if none

	names                          []string
	applyStart, applyEnd, allReady time.Time
	ready                          map[string]readyActor // each actor as it was when all were Ready
	ramp, held                     memMax                // the host's memory before and during the hold
}

// readyActor is what must not change about an actor during the hold.
type readyActor struct {
	created, readySince metav1.Time
	epoch               int64
	hostPod             string
}

// memMax is the most memory the host's container was seen to take.
type memMax struct {
	samples         int
	workingSet, rss uint64
	last            string // the last sample, or why there was none
}

// checkTimeBudget fails at once when go test's -timeout cannot fit the
// test's deadlines: a timeout would kill it without its cleanup.
func (sc *scaleRun) checkTimeBudget(t *testing.T) {
	need := 5*time.Minute + scaleReadyTimeout(sc.n) + sc.hold + scaleDeleteTimeout(sc.n) + 8*time.Minute
	if dl, ok := t.Deadline(); ok && time.Until(dl) < need {
		t.Fatalf("go test -timeout leaves %v, but %d actors held %v may need %v: raise -timeout",
			time.Until(dl).Round(time.Second), sc.n, sc.hold, need.Round(time.Minute))
	}
}

// connect replaces the suite's client with one allowed more requests a
// second (client-go's default is 5): N creates would otherwise be paced by
// the test, not by the cluster.
func (sc *scaleRun) connect(t *testing.T) {
	cfg, err := clientcmd.BuildConfigFromFlags("", sc.kubeconfig)
	if err != nil {
		t.Fatalf("loading kubeconfig %s: %v", sc.kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	kube, err := client.New(cfg, client.Options{Scheme: sc.kube.Scheme()})
	if err != nil {
		t.Fatalf("creating a client for %s: %v", cfg.Host, err)
	}
	sc.kube = kube
	if sc.cs, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatalf("creating a clientset for %s: %v", cfg.Host, err)
	}
}

// buildHello builds examples/hello the way config/samples documents (make
// samples: stripped, gzipped) and returns the module.
func (sc *scaleRun) buildHello(t *testing.T) []byte {
	out := filepath.Join(sc.tmp, "components")
	sc.runOK(t, "make", "--no-print-directory", "-C", sc.root, "samples", "SAMPLES=hello", "SAMPLES_OUT="+out)
	b, err := os.ReadFile(filepath.Join(out, scaleModuleKey))
	if err != nil {
		t.Fatalf("make samples SAMPLES=hello: %v", err)
	}
	t.Logf("examples/hello: %d bytes gzipped", len(b))
	return b
}

// install: helm install with the chart's defaults but for the image under
// test and the disk watermark (diskValues: this machine's shared disk, not
// memory); then the one host pod, its memory limit, and its Lease.
func (sc *scaleRun) install(t *testing.T) {
	values := append(slices.Clone(sc.imageArgs), diskValues...)
	args := append([]string{"install", release, filepath.Join(sc.root, "charts", "troupe"), "-n", systemNS,
		"--create-namespace", "--wait", "--timeout", "3m"}, values...)
	start := time.Now()
	sc.helmOK(t, args...)
	t.Logf("helm install --wait with the chart's defaults and %s: %v", strings.Join(values, " "), time.Since(start).Round(100*time.Millisecond))

	hosts := sc.readyHostPods(t, nil)
	if len(hosts) != 1 {
		t.Fatalf("%d host pods: the test measures one host (the local cluster has one node)", len(hosts))
	}
	sc.host = hosts[0]
	c := container(&sc.host.Spec, hostContainer)
	if c == nil {
		t.Fatalf("host pod %s has no container %q", sc.host.Name, hostContainer)
	}
	lim := c.Resources.Limits.Memory()
	if lim.IsZero() {
		t.Fatalf("host pod %s has no memory limit: the chart's default is 1Gi", sc.host.Name)
	}
	sc.limit = lim.Value()
	if st := containerStatus(&sc.host, hostContainer); st != nil {
		sc.hostRestarts = st.RestartCount
	}

	var capacity int
	poll(t, time.Minute, 500*time.Millisecond, "the Lease of host "+sc.host.Name, func(ctx context.Context) (bool, string, error) {
		var l coordinationv1.Lease
		if err := sc.kube.Get(ctx, client.ObjectKey{Namespace: systemNS, Name: sc.host.Name}, &l); err != nil {
			return false, err.Error(), nil
		}
		v, ok := l.Annotations[theaterv1alpha1.CapacityAnnotation]
		if !ok {
			return false, "no capacity annotation yet", nil
		}
		var err error
		if capacity, err = strconv.Atoi(v); err != nil {
			return false, "", fmt.Errorf("capacity annotation %q: %w", v, err)
		}
		return true, "", nil
	})
	t.Logf("host pod %s on node %s: memory limit %s (request %s), capacity %d actors, restarts %d; %s",
		sc.host.Name, sc.host.Spec.NodeName, lim, c.Resources.Requests.Memory(), capacity, sc.hostRestarts, sc.leaseMemory(t.Context()))
	if sc.n > capacity {
		t.Fatalf("%d actors are more than the host's capacity %d (host.capacity)", sc.n, capacity)
	}
	sc.forwarded = sc.portForward(t, systemNS, "pod/"+sc.host.Name, 8080)
}

// createModule makes the namespace and the one ConfigMap every Actor's
// module comes from.
func (sc *scaleRun) createModule(t *testing.T, module []byte) {
	ctx := t.Context()
	if err := sc.kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: scaleNS, Labels: scaleLabels}}); err != nil {
		t.Fatalf("creating namespace %s: %v", scaleNS, err)
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: scaleNS, Name: scaleConfigMap, Labels: scaleLabels},
		BinaryData: map[string][]byte{scaleModuleKey: module},
	}
	if err := sc.kube.Create(ctx, cm); err != nil {
		t.Fatalf("creating ConfigMap %s: %v", scaleConfigMap, err)
	}
}

// helloActor is config/samples' hello, named name, its module in the
// shared ConfigMap.
func helloActor(name string) *theaterv1alpha1.Actor {
	greeting := "Hello"
	return &theaterv1alpha1.Actor{
		ObjectMeta: metav1.ObjectMeta{Namespace: scaleNS, Name: name, Labels: scaleLabels},
		Spec: theaterv1alpha1.ActorSpec{
			Component: theaterv1alpha1.ComponentSource{
				ConfigMap: &theaterv1alpha1.ComponentConfigMap{Name: scaleConfigMap, Key: scaleModuleKey},
			},
			Name:         "hello",
			Version:      "0.1.0",
			Description:  "Greets with its id and name and counts its runs across restarts.",
			InitialState: `{"count":0}`,
			Handlers:     []theaterv1alpha1.Handler{{Type: theaterv1alpha1.HandlerRuntime}},
			Env:          []theaterv1alpha1.EnvVar{{Name: "GREETING", Value: &greeting}},
		},
	}
}

// createActors creates the N Actors, scaleWorkers at a time.
func (sc *scaleRun) createActors(t *testing.T) {
	width := len(strconv.Itoa(sc.n - 1))
	sc.names = make([]string, sc.n)
	for i := range sc.names {
		sc.names[i] = fmt.Sprintf("hello-%0*d", width, i)
	}
	// A busy API server may ask to come back later; a create retried after
	// its first try landed finds the Actor there.
	transient := func(err error) bool {
		return apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) ||
			apierrors.IsTimeout(err) || apierrors.IsServiceUnavailable(err)
	}
	sc.applyStart = time.Now()
	err := forEach(t.Context(), sc.n, scaleWorkers, func(ctx context.Context, i int) error {
		err := retry.OnError(retry.DefaultBackoff, transient, func() error {
			err := sc.kube.Create(ctx, helloActor(sc.names[i]))
			if apierrors.IsAlreadyExists(err) {
				return nil
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("creating actor %s: %w", sc.names[i], err)
		}
		return nil
	})
	sc.applyEnd = time.Now()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("created %d Actors, %d at a time, in %v", sc.n, scaleWorkers, sc.applyEnd.Sub(sc.applyStart).Round(10*time.Millisecond))
}

// forEach calls fn with 0..n-1 on up to workers goroutines; the first error
// cancels the calls not yet made and is returned.
func forEach(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				if err := fn(ctx, i); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

// list is the test's Actors, one LIST.
func (sc *scaleRun) list(ctx context.Context) ([]theaterv1alpha1.Actor, error) {
	var l theaterv1alpha1.ActorList
	if err := sc.kube.List(ctx, &l, client.InNamespace(scaleNS), client.MatchingLabels(scaleLabels)); err != nil {
		return nil, fmt.Errorf("listing the Actors: %w", err)
	}
	return l.Items, nil
}

// actorCounts sums up one LIST of the Actors.
type actorCounts struct {
	total, want, ready, failed int
	notReady                   map[string]int // by Ready reason
	phases                     map[string]int
	example                    string // a not-Ready actor, why
}

func countActors(actors []theaterv1alpha1.Actor, want int) actorCounts {
	c := actorCounts{total: len(actors), want: want, notReady: map[string]int{}, phases: map[string]int{}}
	for i := range actors {
		a := &actors[i]
		phase := string(a.Status.Phase)
		if phase == "" {
			phase = "(none)"
		}
		c.phases[phase]++
		if a.Status.Phase == theaterv1alpha1.PhaseFailed {
			c.failed++
		}
		r := meta.FindStatusCondition(a.Status.Conditions, theaterv1alpha1.ConditionReady)
		if r != nil && r.Status == metav1.ConditionTrue {
			c.ready++
			continue
		}
		reason := "(no Ready condition)"
		if r != nil {
			reason = r.Reason
		}
		c.notReady[reason]++
		if c.example == "" {
			c.example = describeActor(a)
		}
	}
	return c
}

func (c actorCounts) String() string {
	s := fmt.Sprintf("ready %d/%d (%d exist), failed %d, phases %s", c.ready, c.want, c.total, c.failed, countsString(c.phases))
	if len(c.notReady) > 0 {
		s += fmt.Sprintf("; not Ready by reason %s; e.g. %s", countsString(c.notReady), c.example)
	}
	return s
}

// countsString prints counts sorted by key: a=1 b=2.
func countsString(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// describeActor names an actor with its phase, Ready condition and last
// error.
func describeActor(a *theaterv1alpha1.Actor) string {
	s := fmt.Sprintf("%s: phase %q, host %q, epoch %d, restarts %d", a.Name, a.Status.Phase, a.Status.HostPod, a.Status.Epoch, a.Status.Restarts)
	if r := meta.FindStatusCondition(a.Status.Conditions, theaterv1alpha1.ConditionReady); r != nil {
		s += fmt.Sprintf(", Ready=%s %s since %s: %q", r.Status, r.Reason, r.LastTransitionTime.UTC().Format(time.TimeOnly), r.Message)
	} else {
		s += ", no Ready condition"
	}
	if a.Status.LastError != "" {
		s += fmt.Sprintf(", last error %q", a.Status.LastError)
	}
	return s
}

// waitReady polls, one LIST a poll, until every Actor is Ready, logging
// the counts by Ready reason and the host's memory each poll; it gives up
// when no more became Ready for scaleStall.
func (sc *scaleRun) waitReady(t *testing.T) {
	var last []theaterv1alpha1.Actor
	most, progress := 0, time.Now()
	poll(t, scaleReadyTimeout(sc.n), scaleRampPoll, fmt.Sprintf("%d Actors to be Ready", sc.n), func(ctx context.Context) (bool, string, error) {
		if err := sc.sampleMemory(ctx, &sc.ramp); err != nil {
			return false, "", err
		}
		actors, err := sc.list(ctx)
		if err != nil {
			return false, err.Error(), nil
		}
		c := countActors(actors, sc.n)
		t.Logf("%v after the first create: %s; host: %s; %s", time.Since(sc.applyStart).Round(time.Second), c, sc.ramp.last, sc.leaseMemory(ctx))
		last = actors
		if c.ready > most {
			most, progress = c.ready, time.Now()
		}
		if c.ready < sc.n && time.Since(progress) > scaleStall {
			return false, "", fmt.Errorf("no more Actors became Ready for %v: %s", scaleStall, c)
		}
		return c.ready == sc.n && c.total == sc.n, c.String(), nil
	})
	sc.allReady = time.Now()
	sc.ready = map[string]readyActor{}
	for i := range last {
		a := &last[i]
		r := meta.FindStatusCondition(a.Status.Conditions, theaterv1alpha1.ConditionReady)
		sc.ready[a.Name] = readyActor{created: a.CreationTimestamp, readySince: r.LastTransitionTime, epoch: a.Status.Epoch, hostPod: a.Status.HostPod}
		if a.Status.HostPod != sc.host.Name {
			t.Errorf("actor %s is Ready on host pod %q, not %s", a.Name, a.Status.HostPod, sc.host.Name)
		}
	}
	t.Logf("all %d Actors Ready %v after the first create", sc.n, sc.allReady.Sub(sc.applyStart).Round(time.Second))
}

// holdReady checks, one LIST every scaleHoldPoll, that every Actor stays
// Ready for the hold: the same Ready condition (no flap between polls: its
// transition time is unchanged), the same epoch and host, not Failed; and
// that the host's memory stays within its limit, its container not
// restarted.
func (sc *scaleRun) holdReady(t *testing.T) {
	ctx := t.Context()
	end := time.Now().Add(sc.hold)
	lastOK := time.Now()
	for {
		if err := sc.sampleMemory(ctx, &sc.held); err != nil {
			t.Fatalf("during the hold: %v", err)
		}
		actors, err := sc.list(ctx)
		switch {
		case err != nil:
			t.Logf("during the hold: %v", err)
			if time.Since(lastOK) > time.Minute {
				t.Fatalf("during the hold: no LIST of the Actors for %v: %v", time.Since(lastOK).Round(time.Second), err)
			}
		default:
			if bad := sc.checkHeld(actors); bad != "" {
				t.Fatalf("%v into the hold: %s", time.Since(end.Add(-sc.hold)).Round(time.Second), bad)
			}
			lastOK = time.Now()
			t.Logf("hold: all %d Ready, %v to go; host: %s; %s", sc.n, time.Until(end).Round(time.Second), sc.held.last, sc.leaseMemory(ctx))
		}
		if err == nil && !time.Now().Before(end) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("during the hold: %v", ctx.Err())
		case <-time.After(min(scaleHoldPoll, max(time.Until(end), time.Second))):
		}
	}
	if sc.held.samples == 0 {
		t.Fatalf("no memory figure of the host from the kubelet's summary API during the hold (last: %s)", sc.held.last)
	}
}

// checkHeld returns what is wrong with one LIST during the hold, naming the
// first actor that is not as it was when all were Ready; "" when nothing.
func (sc *scaleRun) checkHeld(actors []theaterv1alpha1.Actor) string {
	if len(actors) != sc.n {
		return fmt.Sprintf("%d Actors exist, want %d", len(actors), sc.n)
	}
	for i := range actors {
		a := &actors[i]
		was, ok := sc.ready[a.Name]
		r := meta.FindStatusCondition(a.Status.Conditions, theaterv1alpha1.ConditionReady)
		switch {
		case !ok:
			return "an Actor that was not there when all were Ready: " + describeActor(a)
		case r == nil || r.Status != metav1.ConditionTrue:
			return "no longer Ready: " + describeActor(a)
		case a.Status.Phase == theaterv1alpha1.PhaseFailed:
			return "Failed: " + describeActor(a)
		case !r.LastTransitionTime.Equal(&was.readySince):
			return fmt.Sprintf("Ready again since %s, was Ready since %s (it was not Ready in between): %s",
				r.LastTransitionTime.UTC().Format(time.TimeOnly), was.readySince.UTC().Format(time.TimeOnly), describeActor(a))
		case a.Status.Epoch != was.epoch || a.Status.HostPod != was.hostPod:
			return fmt.Sprintf("placed anew (was epoch %d on %s): %s", was.epoch, was.hostPod, describeActor(a))
		}
	}
	return ""
}

// sampleMemory reads the host container's memory from the kubelet's
// summary API into m. It returns an error for what fails the test: the
// host pod replaced, its container restarted (an OOM kill), its working
// set at its limit. A figure it cannot read is noted in m.last.
func (sc *scaleRun) sampleMemory(ctx context.Context, m *memMax) error {
	var p corev1.Pod
	if err := sc.kube.Get(ctx, client.ObjectKey{Namespace: systemNS, Name: sc.host.Name}, &p); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("host pod %s is gone", sc.host.Name)
		}
		m.last = "reading the host pod: " + err.Error()
		return nil
	}
	if p.UID != sc.host.UID {
		return fmt.Errorf("host pod %s was replaced (uid %s, was %s)", p.Name, p.UID, sc.host.UID)
	}
	if st := containerStatus(&p, hostContainer); st != nil && st.RestartCount > sc.hostRestarts {
		why := "unknown"
		if term := st.LastTerminationState.Terminated; term != nil {
			why = fmt.Sprintf("%s, exit code %d at %s", term.Reason, term.ExitCode, term.FinishedAt.UTC().Format(time.TimeOnly))
		}
		return fmt.Errorf("host container restarted (restartCount %d, was %d; last termination: %s)", st.RestartCount, sc.hostRestarts, why)
	}
	ws, rss, err := sc.kubeletMemory(ctx, p.Spec.NodeName, p.Name)
	if err != nil {
		m.last = err.Error()
		return nil
	}
	m.samples++
	m.workingSet, m.rss = max(m.workingSet, ws), max(m.rss, rss)
	m.last = fmt.Sprintf("working set %s, rss %s of limit %s", mib(ws), mib(rss), mib(uint64(sc.limit)))
	if ws >= uint64(sc.limit) {
		return fmt.Errorf("the host's working set %s reached its memory limit %s", mib(ws), mib(uint64(sc.limit)))
	}
	return nil
}

// kubeletSummary is the part of the kubelet's stats summary
// (k8s.io/kubelet/pkg/apis/stats/v1alpha1.Summary) the test reads.
type kubeletSummary struct {
	Pods []struct {
		PodRef struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"podRef"`
		Containers []struct {
			Name   string `json:"name"`
			Memory *struct {
				WorkingSetBytes *uint64 `json:"workingSetBytes"`
				RSSBytes        *uint64 `json:"rssBytes"`
			} `json:"memory"`
		} `json:"containers"`
	} `json:"pods"`
}

// kubeletMemory reads the working set and RSS of the host container of
// pod from GET /api/v1/nodes/NODE/proxy/stats/summary.
func (sc *scaleRun) kubeletMemory(ctx context.Context, node, pod string) (workingSet, rss uint64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	body, err := sc.cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", node, "proxy", "stats", "summary").Stream(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("the kubelet's stats summary of node %s: %w", node, err)
	}
	defer body.Close()
	var s kubeletSummary
	if err := json.NewDecoder(io.LimitReader(body, 32<<20)).Decode(&s); err != nil {
		return 0, 0, fmt.Errorf("decoding the kubelet's stats summary of node %s: %w", node, err)
	}
	for _, p := range s.Pods {
		if p.PodRef.Namespace != systemNS || p.PodRef.Name != pod {
			continue
		}
		for _, c := range p.Containers {
			if c.Name != hostContainer {
				continue
			}
			if c.Memory == nil || c.Memory.WorkingSetBytes == nil {
				return 0, 0, fmt.Errorf("the kubelet's stats summary has no working set for %s/%s yet", pod, hostContainer)
			}
			return *c.Memory.WorkingSetBytes, deref(c.Memory.RSSBytes), nil
		}
	}
	return 0, 0, fmt.Errorf("the kubelet's stats summary of node %s has no container %s/%s yet", node, pod, hostContainer)
}

// leaseMemory is the host's own memory figures from its Lease (what the
// manager places by).
func (sc *scaleRun) leaseMemory(ctx context.Context) string {
	var l coordinationv1.Lease
	if err := sc.kube.Get(ctx, client.ObjectKey{Namespace: systemNS, Name: sc.host.Name}, &l); err != nil {
		return "lease: " + err.Error()
	}
	get := func(k string) string {
		v, ok := l.Annotations[k]
		if !ok {
			return "-"
		}
		if b, err := strconv.ParseUint(v, 10, 64); err == nil && k != theaterv1alpha1.MemoryActorsAnnotation {
			return mib(b)
		}
		return v
	}
	return fmt.Sprintf("lease: memory capacity %s, used %s by %s actors, per actor %s",
		get(theaterv1alpha1.MemoryCapacityAnnotation), get(theaterv1alpha1.MemoryUsedAnnotation),
		get(theaterv1alpha1.MemoryActorsAnnotation), get(theaterv1alpha1.MemoryPerActorAnnotation))
}

// logHostMetrics logs the host's memory figures from its /metrics; a
// failed scrape is logged only (the kubelet's figures are the test's).
func (sc *scaleRun) logHostMetrics(t *testing.T, when string) {
	if sc.forwarded == "" {
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	fams, err := scrapeMetrics(ctx, sc.forwarded)
	if err != nil {
		t.Logf("the host's /metrics %s: %v", when, err)
		return
	}
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(fams)) {
		if !strings.HasPrefix(name, "troupe_host_memory") && name != "troupe_host_actors_running" {
			continue
		}
		v, _ := metricValue(fams, name, "")
		s := strconv.FormatFloat(v, 'f', -1, 64)
		if strings.HasSuffix(name, "_bytes") {
			s = mib(uint64(v))
		}
		parts = append(parts, name+"="+s)
	}
	t.Logf("the host's /metrics %s: %s", when, strings.Join(parts, " "))
}

// scrapeMetrics reads and parses a /metrics, at most 64 MiB of it.
func scrapeMetrics(ctx context.Context, addr string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("GET /metrics: %s: %s", resp.Status, b)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("parsing /metrics: %w", err)
	}
	return fams, nil
}

// summary logs the figures of a passed run in one line.
func (sc *scaleRun) summary(t *testing.T) {
	var durs []time.Duration
	var lastReady time.Time
	for _, a := range sc.ready {
		durs = append(durs, a.readySince.Sub(a.created.Time))
		if a.readySince.After(lastReady) {
			lastReady = a.readySince.Time
		}
	}
	slices.Sort(durs)
	t.Logf("scale summary: N=%d; created in %v; all Ready %v after the first create (the last Ready transition %v after it); "+
		"create→Ready per actor (whole seconds) p50 %v p90 %v max %v; "+
		"host working set max %s, rss max %s over the %v hold (%d samples; %s and %s before it), limit %s (%.0f%%), "+
		"working set per actor %s; host restarts 0",
		sc.n, sc.applyEnd.Sub(sc.applyStart).Round(time.Second), sc.allReady.Sub(sc.applyStart).Round(time.Second),
		lastReady.Sub(sc.applyStart).Round(time.Second), percentile(durs, 50), percentile(durs, 90), percentile(durs, 100),
		mib(sc.held.workingSet), mib(sc.held.rss), sc.hold, sc.held.samples, mib(sc.ramp.workingSet), mib(sc.ramp.rss),
		mib(uint64(sc.limit)), 100*float64(sc.held.workingSet)/float64(sc.limit), mib(sc.held.workingSet/uint64(sc.n)))
}

// percentile is the nearest-rank p-th percentile of sorted durations.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (p*len(sorted)+99)/100 - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// mib prints bytes in MiB.
func mib(b uint64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }

func container(spec *corev1.PodSpec, name string) *corev1.Container {
	for i := range spec.Containers {
		if spec.Containers[i].Name == name {
			return &spec.Containers[i]
		}
	}
	return nil
}

func containerStatus(p *corev1.Pod, name string) *corev1.ContainerStatus {
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == name {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// dump logs what explains a failure, bounded for N actors: their counts,
// the first not-Ready ones, the pods, the manager's and the host's logs,
// and the latest Events.
func (sc *scaleRun) dump(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if actors, err := sc.list(ctx); err != nil {
		t.Logf("--- actors: %v", err)
	} else {
		t.Logf("--- actors: %s", countActors(actors, sc.n))
		shown := 0
		for i := range actors {
			if a := &actors[i]; !meta.IsStatusConditionTrue(a.Status.Conditions, theaterv1alpha1.ConditionReady) && shown < 20 {
				t.Logf("  %s", describeActor(a))
				shown++
			}
		}
	}
	show := func(title string, tail int, args ...string) {
		out, err := sc.kubectlCmd(ctx, args...)
		if err != nil {
			out += err.Error()
		}
		if lines := strings.Split(strings.TrimRight(out, "\n"), "\n"); tail > 0 && len(lines) > tail {
			out = strings.Join(lines[len(lines)-tail:], "\n")
		}
		t.Logf("--- %s (kubectl %s)\n%s", title, strings.Join(args, " "), out)
	}
	show("pods", 0, "get", "pods", "-n", systemNS, "-o", "wide")
	show("host pod", 0, "describe", "pods", "-n", systemNS, "-l", hostSelector)
	show("manager log", 0, "logs", "-n", systemNS, "-l", "app.kubernetes.io/component=manager", "--tail=150", "--all-containers", "--prefix")
	show("host log", 0, "logs", "-n", systemNS, "-l", "app.kubernetes.io/component=host", "--tail=200", "--all-containers", "--prefix")
	show("events of "+systemNS, 40, "get", "events", "-n", systemNS, "--sort-by=.lastTimestamp")
	show("events of "+scaleNS, 60, "get", "events", "-n", scaleNS, "--sort-by=.lastTimestamp")
}

// teardown deletes what the test made, in docs/install.md's order: the
// Actors while the manager and the host still run (each is released after
// its host flushed its chain), then the release, the CRD (the chart keeps
// it) and the namespaces, and waits until they are gone, so that the next
// test finds a clean cluster. With KEEP_CLUSTER=1 a failed run's install
// stays, to look at.
func (sc *scaleRun) teardown(t *testing.T) {
	if t.Failed() && os.Getenv("KEEP_CLUSTER") == "1" {
		t.Logf("KEEP_CLUSTER=1: the failed run's release, Actors and namespace %s stay", scaleNS)
		return
	}
	// t.Context is done by now.
	ctx, cancel := context.WithTimeout(context.Background(), scaleDeleteTimeout(sc.n)+8*time.Minute)
	defer cancel()
	start := time.Now()
	gone := func(err error) bool { return apierrors.IsNotFound(err) || meta.IsNoMatchError(err) }

	err := sc.kube.DeleteAllOf(ctx, &theaterv1alpha1.Actor{}, client.InNamespace(scaleNS), client.MatchingLabels(scaleLabels))
	if err != nil && !gone(err) {
		t.Errorf("deleting the Actors: %v", err)
	}
	last, err := waitUntil(ctx, scaleDeleteTimeout(sc.n), 5*time.Second, func(ctx context.Context) (bool, string, error) {
		actors, err := sc.list(ctx)
		if gone(err) {
			return true, "", nil
		}
		if err != nil {
			return false, err.Error(), nil
		}
		return len(actors) == 0, fmt.Sprintf("%d Actors left", len(actors)), nil
	})
	if err != nil {
		t.Errorf("teardown: the Actors were not released (%v; last: %s): removing their finalizers", err, last)
		sc.dropFinalizers(ctx, t)
	} else {
		t.Logf("teardown: the Actors deleted in %v", time.Since(start).Round(time.Second))
	}

	if _, err := sc.helmCmd(ctx, "status", release, "-n", systemNS); err == nil {
		if _, err := sc.helmCmd(ctx, "uninstall", release, "-n", systemNS, "--wait", "--timeout", "3m"); err != nil {
			t.Errorf("teardown: %v", err)
		}
	}
	objs := []client.Object{
		&apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: actorCRD}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: scaleNS}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNS}},
	}
	for _, o := range objs {
		if err := sc.kube.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("teardown: deleting %s: %v", o.GetName(), err)
		}
	}
	// TestTroupe's preflight, which may run next, refuses a cluster with the CRD.
	if last, err := waitUntil(ctx, 3*time.Minute, time.Second, func(ctx context.Context) (bool, string, error) {
		var left []string
		for _, o := range objs {
			if err := sc.kube.Get(ctx, client.ObjectKeyFromObject(o), o); !apierrors.IsNotFound(err) {
				left = append(left, fmt.Sprintf("%s (%v)", o.GetName(), err))
			}
		}
		return len(left) == 0, "left: " + strings.Join(left, ", "), nil
	}); err != nil {
		t.Errorf("teardown: %v (%s)", err, last)
	}
	t.Logf("teardown: %v", time.Since(start).Round(time.Second))
}

// dropFinalizers releases the Actors the manager did not, so that their
// namespace and the CRD can go.
func (sc *scaleRun) dropFinalizers(ctx context.Context, t *testing.T) {
	actors, err := sc.list(ctx)
	if err != nil {
		t.Errorf("teardown: %v", err)
		return
	}
	err = forEach(ctx, len(actors), scaleWorkers, func(ctx context.Context, i int) error {
		a := &actors[i]
		patch := client.MergeFrom(a.DeepCopy())
		a.Finalizers = nil
		return client.IgnoreNotFound(sc.kube.Patch(ctx, a, patch))
	})
	if err != nil {
		t.Errorf("teardown: removing finalizers: %v", err)
	}
}
