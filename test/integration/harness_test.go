package integration

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/controllers"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/diskbudget"
	"github.com/troupe-dev/troupe/internal/envtestutil"
	"github.com/troupe-dev/troupe/internal/host"
)

// Time limits. Things the manager and the hosts do on their own come within
// prompt; a Go actor's first start (inflate, compile ~3 MiB of wasm on a busy
// two-core machine) within slow.
const (
	testLease = 2 * time.Second
	prompt    = 30 * time.Second
	slow      = 3 * time.Minute
	poll      = 20 * time.Millisecond
)

// suite is what the tests of one control plane share: the control plane
// and the hosts' compilation cache (a Go actor compiles once per suite).
type suite struct {
	env      *envtestutil.Env
	compiled string
}

func newSuite(t *testing.T) *suite {
	return &suite{env: envtestutil.Start(t), compiled: t.TempDir()}
}

// clusterOptions tune a cluster; the zero value is the functional tests'.
type clusterOptions struct {
	// leaseDuration of the hosts; testLease if zero.
	leaseDuration time.Duration
	// statusInterval of the hosts; 500ms if zero.
	statusInterval time.Duration
	// logVerbosity of the captured logs (funcr's V levels).
	logVerbosity int
	// backoff of the manager's restarts; 1s, 8s max if zero.
	backoff controllers.Backoff
	// workers of the manager's reconciler; its default if zero.
	workers int
}

// cluster is one manager and its hosts in a namespace of their own (their
// Leases and Actors live there), with every log line they wrote and every
// API request they made, and a watch of the namespace's Actors.
type cluster struct {
	t    testing.TB
	s    *suite
	c    client.Client // the API server, as a user
	ns   string
	opts clusterOptions
	dir  string // the hosts' data directories are in it

	mgrLogs     *logBuffer
	mgrRequests *requestCounter
	stopMgr     func()

	mu    sync.Mutex
	hosts []*testHost

	obs *observer
}

// newCluster starts the manager (the reconciler as cmd/manager sets it up)
// and the Actor watch; hosts come with startHost. Everything stops in t's
// cleanup: the manager first, so it does not react to the hosts leaving.
func (s *suite) newCluster(t testing.TB, opts clusterOptions) *cluster {
	t.Helper()
	if opts.leaseDuration == 0 {
		opts.leaseDuration = testLease
	}
	if opts.statusInterval == 0 {
		opts.statusInterval = 500 * time.Millisecond
	}
	if opts.backoff == (controllers.Backoff{}) {
		opts.backoff = controllers.Backoff{Base: time.Second, Max: 8 * time.Second, Reset: time.Minute}
	}
	c := &cluster{t: t, s: s, c: s.env.Client, ns: s.env.Namespace(t), opts: opts,
		mgrLogs: &logBuffer{}, mgrRequests: newRequestCounter()}
	// The hosts' data directories go after the hosts have stopped (cleanups
	// run last-registered first).
	c.dir = t.TempDir()
	t.Cleanup(c.stop)

	cfg := rest.CopyConfig(s.env.Config)
	// As cmd/manager's ctrl.GetConfig: no client-side rate limit.
	cfg.QPS, cfg.Burst = -1, 0
	cfg.Wrap(c.mgrRequests.wrap)
	mo := s.env.ManagerOptions(c.ns)
	mo.Logger = c.mgrLogs.logger("manager", opts.logVerbosity)
	mgr, err := controllers.NewManager(t.Context(), cfg, mo,
		&controllers.ActorReconciler{HostNamespace: c.ns, Backoff: opts.backoff, Workers: opts.workers})
	if err != nil {
		t.Fatal(err)
	}
	c.stopMgr = envtestutil.Run(t, "the manager", mgr, 60*time.Second)
	c.obs = newObserver(t, s.env, c.ns)
	return c
}

// stop stops the manager, then every host (at once), then the watch.
func (c *cluster) stop() {
	if c.stopMgr != nil {
		c.stopMgr()
	}
	c.mu.Lock()
	hosts := slices.Clone(c.hosts)
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Go(h.stop)
	}
	wg.Wait()
	if c.obs != nil {
		c.obs.stop()
	}
}

// testHost is one host pod, in-process: its data directory, logs, API
// requests, and a switch that cuts it off from the API server.
type testHost struct {
	c        *cluster
	name     string
	node     string
	dataDir  string
	h        *host.Host
	base     string // http://addr of its chain endpoint
	logs     *logBuffer
	requests *requestCounter
	cut      atomic.Bool
	stop     func()
	stopped  chan struct{}
}

// startHost starts a host named prefix-<random> (host pods of earlier tests
// may still be in the process) and waits for its Lease; tune changes its
// configuration first.
func (c *cluster) startHost(prefix string, tune ...func(*host.Config)) *testHost {
	c.t.Helper()
	name := prefix + "-" + rand.String(5)
	th := &testHost{c: c, name: name, node: "node-" + name, dataDir: filepath.Join(c.dir, name),
		logs: &logBuffer{}, requests: newRequestCounter(), stopped: make(chan struct{})}
	cfg := rest.CopyConfig(c.s.env.Config)
	// As cmd/host: the host's own --kube-api-qps and --kube-api-burst.
	cfg.QPS, cfg.Burst = 0, 0
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return th.requests.wrap(&partition{cut: &th.cut, next: rt})
	})
	hc := host.Config{
		NodeName: th.node, PodName: name, PodNamespace: c.ns, DataDir: th.dataDir, RestConfig: cfg,
		CompilationCacheDir: c.s.compiled, LeaseDuration: c.opts.leaseDuration, StatusInterval: c.opts.statusInterval,
		StopGrace: 2 * time.Second, MetricsAddress: "0", HealthProbeAddress: "0", HTTPAddress: "127.0.0.1:0",
		Logger: th.logs.logger(name, c.opts.logVerbosity),
		// The watermark in bytes only: the build machines share a disk
		// whose free share wanders around the 15% default, which would
		// hold every actor in DiskPressure on one day and not the next.
		Disk: diskbudget.NodeLimits{MinFreeBytes: 256 << 20, MinFreePercent: -1},
	}
	for _, f := range tune {
		f(&hc)
	}
	h, err := host.New(hc)
	if err != nil {
		c.t.Fatalf("creating host %s: %v", name, err)
	}
	th.h = h
	th.base = "http://" + h.Addresses()["http"]
	stop := envtestutil.Run(c.t, "host "+name, h, 90*time.Second)
	var once sync.Once
	th.stop = func() {
		once.Do(func() {
			stop()
			close(th.stopped)
		})
	}
	c.mu.Lock()
	c.hosts = append(c.hosts, th)
	c.mu.Unlock()
	// Cleanups run last-registered first: the cluster's own stop (the
	// manager first, then every host at once) must come before the one Run
	// registered for this host alone.
	c.t.Cleanup(c.stop)
	c.g().Eventually(func() error {
		return c.c.Get(context.Background(), types.NamespacedName{Namespace: c.ns, Name: name}, &coordinationv1.Lease{})
	}).WithTimeout(prompt).Should(Succeed(), "host %s's Lease", name)
	return th
}

// crash makes the host vanish as a crashed process does: it is cut off from
// the API server (requests fail, open watches break), then stopped. Its
// Lease stays behind, unrenewed, and so do any status words it had left to
// say. It returns when the cut is made; the stop finishes in the background
// (the cluster's cleanup waits for it).
func (th *testHost) crash() time.Time {
	th.cut.Store(true)
	at := time.Now()
	go th.stop()
	return at
}

func (c *cluster) g() Gomega {
	g := NewWithT(c.t)
	g.SetDefaultEventuallyTimeout(prompt)
	g.SetDefaultEventuallyPollingInterval(poll)
	return g
}

func (c *cluster) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	c.t.Cleanup(cancel)
	return ctx
}

func (c *cluster) key(name string) types.NamespacedName {
	return types.NamespacedName{Namespace: c.ns, Name: name}
}

// componentConfigMap stores a module in a ConfigMap's binaryData, gzipped
// when zip is set (a Go actor is ~3 MiB; a ConfigMap holds 1 MiB).
func (c *cluster) componentConfigMap(name string, wasm []byte, zip bool) *v1alpha1.ComponentSource {
	c.t.Helper()
	data := wasm
	if zip {
		var b bytes.Buffer
		zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
		if err != nil {
			c.t.Fatal(err)
		}
		if _, err := zw.Write(wasm); err != nil {
			c.t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			c.t.Fatal(err)
		}
		data = b.Bytes()
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: c.ns, Name: name}, BinaryData: map[string][]byte{"actor.wasm": data}}
	if err := c.c.Create(c.ctx(), cm); err != nil {
		c.t.Fatalf("creating ConfigMap %s: %v", name, err)
	}
	return &v1alpha1.ComponentSource{ConfigMap: &v1alpha1.ComponentConfigMap{Name: name, Key: "actor.wasm"}}
}

// create applies an Actor, as kubectl apply of a new one does.
func (c *cluster) create(name string, spec v1alpha1.ActorSpec) {
	c.t.Helper()
	a := &v1alpha1.Actor{ObjectMeta: metav1.ObjectMeta{Namespace: c.ns, Name: name}, Spec: spec}
	if err := c.c.Create(c.ctx(), a); err != nil {
		c.t.Fatalf("creating Actor %s: %v", name, err)
	}
}

func (c *cluster) get(name string) *v1alpha1.Actor {
	c.t.Helper()
	var a v1alpha1.Actor
	if err := c.c.Get(c.ctx(), c.key(name), &a); err != nil {
		c.t.Fatalf("getting Actor %s: %v", name, err)
	}
	return &a
}

// readyNow is kubectl wait --for=condition=Ready: Ready=True, and for the
// Actor's current generation.
func readyNow(a *v1alpha1.Actor) bool {
	r := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionReady)
	return r != nil && r.Status == metav1.ConditionTrue && r.ObservedGeneration == a.Generation
}

// describe is an Actor's status in one line, for failure messages.
func describe(a *v1alpha1.Actor) string {
	var conds []string
	for _, c := range a.Status.Conditions {
		conds = append(conds, fmt.Sprintf("%s=%s/%s(gen %d): %s", c.Type, c.Status, c.Reason, c.ObservedGeneration, c.Message))
	}
	return fmt.Sprintf("%s gen %d phase %s host %q epoch %d restarts %d [%s]", a.Name, a.Generation, a.Status.Phase,
		a.Status.HostPod, a.Status.Epoch, a.Status.Restarts, strings.Join(conds, "; "))
}

// waitReady waits for kubectl-wait readiness and returns the Actor.
func (c *cluster) waitReady(name string, timeout time.Duration) *v1alpha1.Actor {
	c.t.Helper()
	var a v1alpha1.Actor
	c.g().Eventually(func() bool {
		if err := c.c.Get(context.Background(), c.key(name), &a); err != nil {
			return false
		}
		return readyNow(&a)
	}).WithTimeout(timeout).Should(BeTrue(), func() string { return describe(&a) })
	return &a
}

// waitReason waits until the Actor's Ready condition has reason and returns
// the Actor.
func (c *cluster) waitReason(name, reason string, timeout time.Duration) *v1alpha1.Actor {
	c.t.Helper()
	var a v1alpha1.Actor
	c.g().Eventually(func() string {
		if err := c.c.Get(context.Background(), c.key(name), &a); err != nil {
			return err.Error()
		}
		if r := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionReady); r != nil {
			return r.Reason
		}
		return ""
	}).WithTimeout(timeout).Should(Equal(reason), func() string { return describe(&a) })
	return &a
}

// hostOf returns the test host an Actor is assigned to.
func (c *cluster) hostOf(a *v1alpha1.Actor) *testHost {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.hosts {
		if h.name == a.Status.HostPod {
			return h
		}
	}
	c.t.Fatalf("actor %s is assigned to %q, not one of the test's hosts", a.Name, a.Status.HostPod)
	return nil
}

// events returns the Events recorded on the Actor name (by the manager or a
// host), or on every object of the namespace when name is "".
func (c *cluster) events(name string) []eventsv1.Event {
	var list eventsv1.EventList
	if err := c.c.List(context.Background(), &list, client.InNamespace(c.ns)); err != nil {
		c.t.Fatalf("listing Events: %v", err)
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if name == "" || e.Regarding.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// eventNotes returns "Reason: note" of the Actor's Events.
func (c *cluster) eventNotes(name string) []string {
	var out []string
	for _, e := range c.events(name) {
		out = append(out, e.Reason+": "+e.Note)
	}
	return out
}

// logs returns everything the manager and the hosts logged.
func (c *cluster) logs() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	b.WriteString(c.mgrLogs.String())
	for _, h := range c.hosts {
		b.WriteString(h.logs.String())
	}
	return b.String()
}

// chainFile is where host th keeps the chain of actor a.
func (th *testHost) chainFile(a *v1alpha1.Actor) string {
	return filepath.Join(th.dataDir, a.Namespace, a.Name, a.Status.ActorID, chain.FileName)
}

// chain reads an actor's chain from the host's chain endpoint and checks
// it as `troupe chain show --from-host` does: every event re-hashed with
// internal/chain, every parent link and sequence number followed.
func (th *testHost) chain(name string) ([]chain.Event, error) {
	resp, err := http.Get(th.base + "/actors/" + th.c.ns + "/" + name + "/chain")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET chain of %s: %s: %s", name, resp.Status, b)
	}
	var out []chain.Event
	if err := chain.ReadJSON(resp.Body, func(e *chain.Event) error {
		out = append(out, *e)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("chain of %s: %w", name, err)
	}
	return out, nil
}

// readChainFile verifies a chain file with internal/chain and returns its
// events.
func readChainFile(path string) (chain.Report, []chain.Event, error) {
	rep, err := chain.VerifyFile(path)
	if err != nil {
		return rep, nil, err
	}
	if !rep.OK() {
		return rep, nil, fmt.Errorf("chain %s is damaged at event %d: %s", path, rep.FirstBad, rep.Reason)
	}
	var events []chain.Event
	err = chain.ReadFile(path, func(e chain.Event) error {
		e.Data = bytes.Clone(e.Data)
		events = append(events, e)
		return nil
	})
	return rep, events, err
}

// customEvents returns the data of the CustomEvents of type typ, decoded
// as JSON objects.
func customEvents(events []chain.Event, typ string) []map[string]any {
	var out []map[string]any
	for _, e := range events {
		if e.Kind != chain.KindCustom {
			continue
		}
		var d struct {
			Type string `json:"type"`
			Data []byte `json:"data"` // base64 in the chain's JSON
		}
		if json.Unmarshal(e.Data, &d) != nil || d.Type != typ {
			continue
		}
		var m map[string]any
		if json.Unmarshal(d.Data, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func countKind(events []chain.Event, k chain.Kind) int {
	n := 0
	for _, e := range events {
		if e.Kind == k {
			n++
		}
	}
	return n
}

// observer watches a namespace's Actors (a controller-runtime informer, of
// its own: its requests are nobody's in the counts) and remembers when each
// was first seen Ready, every version of the tracked ones, and calls a hook
// when one is deleted.
type observer struct {
	cache  cache.Cache
	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	readyAt    map[string]time.Time
	assignedAt map[string]time.Time
	tracked    map[string][]*v1alpha1.Actor
	onDelete   map[string]func(*v1alpha1.Actor)
}

func newObserver(t testing.TB, env *envtestutil.Env, ns string) *observer {
	t.Helper()
	o := &observer{readyAt: map[string]time.Time{}, assignedAt: map[string]time.Time{}, tracked: map[string][]*v1alpha1.Actor{},
		onDelete: map[string]func(*v1alpha1.Actor){}, done: make(chan struct{})}
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS = -1
	ch, err := cache.New(cfg, cache.Options{Scheme: env.Scheme, DefaultNamespaces: map[string]cache.Config{ns: {}}})
	if err != nil {
		t.Fatalf("creating the observer's cache: %v", err)
	}
	o.cache = ch
	ctx, cancel := context.WithCancel(context.Background())
	o.cancel = cancel
	inf, err := ch.GetInformer(ctx, &v1alpha1.Actor{}, cache.BlockUntilSynced(false))
	if err != nil {
		cancel()
		t.Fatalf("watching Actors: %v", err)
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { o.seen(obj, false) },
		UpdateFunc: func(_, obj any) { o.seen(obj, false) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			o.seen(obj, true)
		},
	}); err != nil {
		cancel()
		t.Fatalf("watching Actors: %v", err)
	}
	go func() {
		defer close(o.done)
		_ = ch.Start(ctx)
	}()
	sctx, scancel := context.WithTimeout(ctx, prompt)
	defer scancel()
	if !ch.WaitForCacheSync(sctx) {
		o.stop()
		t.Fatal("the observer's cache did not sync")
	}
	return o
}

func (o *observer) stop() {
	o.cancel()
	<-o.done
}

func (o *observer) seen(obj any, deleted bool) {
	a, ok := obj.(*v1alpha1.Actor)
	if !ok {
		return
	}
	now := time.Now()
	o.mu.Lock()
	if _, ok := o.readyAt[a.Name]; !ok && readyNow(a) && !deleted {
		o.readyAt[a.Name] = now
	}
	if _, ok := o.assignedAt[a.Name]; !ok && a.Status.HostPod != "" && !deleted {
		o.assignedAt[a.Name] = now
	}
	if h, ok := o.tracked[a.Name]; ok {
		o.tracked[a.Name] = append(h, a.DeepCopy())
	}
	hook := o.onDelete[a.Name]
	o.mu.Unlock()
	if deleted && hook != nil {
		hook(a.DeepCopy())
	}
}

// track starts recording every version of the Actor name the watch sees.
func (o *observer) track(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.tracked[name]; !ok {
		o.tracked[name] = []*v1alpha1.Actor{}
	}
}

// history returns the versions of a tracked Actor seen so far.
func (o *observer) history(name string) []*v1alpha1.Actor {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.tracked[name])
}

func (o *observer) whenDeleted(name string, fn func(*v1alpha1.Actor)) {
	o.mu.Lock()
	o.onDelete[name] = fn
	o.mu.Unlock()
}

// firstAssigned is when the watch first saw the Actor assigned to a host.
func (o *observer) firstAssigned(name string) (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	t, ok := o.assignedAt[name]
	return t, ok
}

func (o *observer) firstReady(name string) (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	t, ok := o.readyAt[name]
	return t, ok
}

// logBuffer collects log lines (funcr JSON, one a line).
type logBuffer struct{ envtestutil.LockedBuffer }

// logger writes into l, and to stderr too with TROUPE_TEST_LOG set.
func (l *logBuffer) logger(name string, verbosity int) logr.Logger {
	verbose := os.Getenv("TROUPE_TEST_LOG") != ""
	return funcr.NewJSON(func(obj string) {
		fmt.Fprintln(l, obj)
		if verbose {
			fmt.Fprintln(os.Stderr, obj)
		}
	}, funcr.Options{Verbosity: verbosity}).WithName(name)
}

// requestCounter counts the API requests made through a rest.Config, by
// verb and resource ("PUT actors/status", "WATCH leases", ...).
type requestCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func newRequestCounter() *requestCounter { return &requestCounter{counts: map[string]int{}} }

func (rc *requestCounter) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		k := classify(req)
		switch {
		case err != nil:
			k += " (failed)"
		case resp.StatusCode >= 300:
			k += " (" + strconv.Itoa(resp.StatusCode) + ")"
		}
		rc.mu.Lock()
		rc.counts[k]++
		rc.mu.Unlock()
		return resp, err
	})
}

// snapshot returns the counts so far and their total.
func (rc *requestCounter) snapshot() (map[string]int, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make(map[string]int, len(rc.counts))
	total := 0
	for k, v := range rc.counts {
		out[k] = v
		total += v
	}
	return out, total
}

// diffCounts is after - before, without zeros.
func diffCounts(before, after map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func formatCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// classify names a request by verb and resource: /api/v1/namespaces/n/pods/x
// is "GET pods", .../actors/x/status "PUT actors/status", a list "LIST
// actors", a watch "WATCH actors".
func classify(req *http.Request) string {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	var rest []string
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		rest = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		rest = parts[3:]
	default:
		return req.Method + " " + req.URL.Path
	}
	if len(rest) > 2 && rest[0] == "namespaces" {
		rest = rest[2:]
	}
	if len(rest) == 0 {
		return req.Method + " discovery"
	}
	resource := rest[0]
	if len(rest) >= 3 {
		resource += "/" + rest[2]
	}
	verb := req.Method
	if verb == http.MethodGet {
		switch {
		case req.URL.Query().Get("watch") == "true" || req.URL.Query().Get("watch") == "1":
			verb = "WATCH"
		case len(rest) == 1:
			verb = "LIST"
		}
	}
	return verb + " " + resource
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// errPartitioned is what a host cut off from the API server gets.
var errPartitioned = errors.New("integration test: the host is cut off from the API server")

// partition fails every request once cut is set, and breaks the responses
// already streaming (watches) at their next read.
type partition struct {
	cut  *atomic.Bool
	next http.RoundTripper
}

func (p *partition) RoundTrip(req *http.Request) (*http.Response, error) {
	if p.cut.Load() {
		return nil, errPartitioned
	}
	resp, err := p.next.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	resp.Body = &cutBody{ReadCloser: resp.Body, cut: p.cut}
	return resp, nil
}

type cutBody struct {
	io.ReadCloser
	cut *atomic.Bool
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.cut.Load() {
		return 0, errPartitioned
	}
	n, err := b.ReadCloser.Read(p)
	if b.cut.Load() {
		return 0, errPartitioned
	}
	return n, err
}

// getJSON decodes the JSON a GET of url answers into v.
func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// testdata reads a module of testdata/ (generated from the .wat beside it
// by make wat).
func testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// updateConfigMap changes a ConfigMap as kubectl edit does.
func (c *cluster) updateConfigMap(name string, mutate func(*corev1.ConfigMap)) {
	c.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var cm corev1.ConfigMap
		if err := c.c.Get(c.ctx(), c.key(name), &cm); err != nil {
			return err
		}
		mutate(&cm)
		return c.c.Update(c.ctx(), &cm)
	})
	if err != nil {
		c.t.Fatalf("updating ConfigMap %s: %v", name, err)
	}
}

// ourGoroutines lists the goroutines still running code of Troupe's
// manager or hosts (or an informer), one stack each.
func ourGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	markers := []string{
		"troupe/internal/host.", "troupe/controllers.", "troupe/internal/actorhost.", "troupe/internal/kubeenv.",
		"troupe/internal/runtimehandler.", "sigs.k8s.io/controller-runtime/pkg/manager.", "k8s.io/client-go/tools/cache.(*Reflector)",
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "ourGoroutines") {
			continue
		}
		for _, m := range markers {
			if strings.Contains(g, m) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}
