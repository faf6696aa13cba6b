package host

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/google/uuid"
	. "github.com/onsi/gomega"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/diskbudget"
	"github.com/troupe-dev/troupe/internal/envtestutil"
)

// suite is what the subtests of TestHost share: one control plane and one
// compilation cache (a Go actor compiles once per suite, not per host).
type suite struct {
	env      *envtestutil.Env
	compiled string
	// modules serves modules over https by digest: Go actors are too large
	// for a ConfigMap.
	modules *httptest.Server
	mu      sync.Mutex
	served  map[string][]byte
}

func newSuite(t testing.TB) *suite {
	s := &suite{env: envtestutil.Start(t), compiled: t.TempDir(), served: map[string][]byte{}}
	s.modules = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		b, ok := s.served[strings.TrimPrefix(r.URL.Path, "/")]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(s.modules.Close)
	return s
}

// urlSource serves wasm from the suite's https server.
func (s *suite) urlSource(wasm []byte) *v1alpha1.ComponentSource {
	d := sha256Hex(wasm)
	s.mu.Lock()
	s.served[d] = wasm
	s.mu.Unlock()
	return &v1alpha1.ComponentSource{URL: s.modules.URL + "/" + d, SHA256: d}
}

// harness is one host running in-process for one test, with the test's
// namespace, its data directory and everything it logged.
type harness struct {
	t       testing.TB
	s       *suite
	c       client.Client
	ns      string
	pod     string
	node    string
	dataDir string
	host    *Host
	logs    *lockedBuffer
	base    string // http://addr of the host's servers
	// stop stops the host (once) and reports how it ended.
	stop func()
}

type hostOption func(*Config)

// lockedBuffer is a buffer a process writes while the test reads it.
type lockedBuffer = envtestutil.LockedBuffer

// startHost starts a host for t in a namespace of its own and stops it in
// t's cleanup.
func (s *suite) startHost(t testing.TB, opts ...hostOption) *harness {
	t.Helper()
	h := &harness{t: t, s: s, c: s.env.Client, ns: s.env.Namespace(t), pod: "host-" + rand.String(6), node: "node-" + rand.String(6),
		dataDir: t.TempDir(), logs: &lockedBuffer{}}
	verbose := os.Getenv("TROUPE_TEST_LOG") != ""
	log := funcr.NewJSON(func(obj string) {
		fmt.Fprintln(h.logs, obj)
		if verbose {
			fmt.Fprintln(os.Stderr, obj)
		}
	}, funcr.Options{Verbosity: 1})
	cfg := Config{
		NodeName: h.node, PodName: h.pod, PodNamespace: h.ns, PodUID: "uid-" + h.pod, DataDir: h.dataDir, RestConfig: s.env.Config,
		CompilationCacheDir: s.compiled, LeaseDuration: 3 * time.Second, StatusInterval: 300 * time.Millisecond,
		StopGrace: 2 * time.Second, MetricsAddress: "127.0.0.1:0", HealthProbeAddress: "127.0.0.1:0", HTTPAddress: "127.0.0.1:0",
		Logger: log, HTTPClient: s.modules.Client(),
		// Plenty of free space, whatever the machine has: the watermark's
		// own test injects the space it needs.
		FreeSpace: func(string) (diskbudget.Space, error) { return diskbudget.Space{Free: 1 << 40, Total: 2 << 40}, nil },
	}
	for _, o := range opts {
		o(&cfg)
	}
	host, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.host = host
	h.base = "http://" + host.Addresses()["http"]
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- host.Start(ctx) }()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("host stopped with: %v", err)
				}
			case <-time.After(60 * time.Second):
				t.Error("the host did not stop within 60s")
			}
		})
	}
	t.Cleanup(h.stop)
	return h
}

func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	h.t.Cleanup(cancel)
	return ctx
}

func (h *harness) key(name string) types.NamespacedName {
	return types.NamespacedName{Namespace: h.ns, Name: name}
}

// wasmConfigMap stores a module as binaryData.
func (h *harness) wasmConfigMap(name string, wasm []byte) *v1alpha1.ComponentSource {
	h.t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name}, BinaryData: map[string][]byte{"actor.wasm": wasm}}
	if err := h.c.Create(h.ctx(), cm); err != nil {
		h.t.Fatal(err)
	}
	return &v1alpha1.ComponentSource{ConfigMap: &v1alpha1.ComponentConfigMap{Name: name, Key: "actor.wasm"}}
}

// okSpec runs testdata/ok.wasm from a ConfigMap of its own, <name>-wasm.
func (h *harness) okSpec(name string) v1alpha1.ActorSpec {
	h.t.Helper()
	return v1alpha1.ActorSpec{Component: *h.wasmConfigMap(name+"-wasm", testdata(h.t, "ok.wasm"))}
}

// run creates an Actor, assigns it to this host with epoch 1 and waits
// until it runs; it returns the Ready condition.
func (h *harness) run(name string, spec v1alpha1.ActorSpec, timeout time.Duration) metav1.Condition {
	h.t.Helper()
	h.create(name, spec)
	h.assign(name, h.pod, 1)
	return h.waitReason(name, v1alpha1.ReasonRunning, timeout)
}

// create applies an Actor.
func (h *harness) create(name string, spec v1alpha1.ActorSpec) *v1alpha1.Actor {
	h.t.Helper()
	a := &v1alpha1.Actor{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name}, Spec: spec}
	if err := h.c.Create(h.ctx(), a); err != nil {
		h.t.Fatal(err)
	}
	return a
}

// assign plays the controller: it gives the actor an id (once) and assigns
// it to pod with epoch, in status and in the label, as
// PROTOCOL.md#the-epoch-fence says.
func (h *harness) assign(name, pod string, epoch int64) {
	h.t.Helper()
	g := NewWithT(h.t)
	g.Eventually(func() error {
		var a v1alpha1.Actor
		if err := h.c.Get(h.ctx(), h.key(name), &a); err != nil {
			return err
		}
		if a.Status.ActorID == "" {
			a.Status.ActorID = uuid.NewString()
		}
		a.Status.HostPod, a.Status.Epoch = pod, epoch
		a.Status.NodeName = h.node
		if pod == "" {
			a.Status.NodeName = ""
		}
		a.Status.Phase = v1alpha1.PhaseScheduled
		meta.SetStatusCondition(&a.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionScheduled,
			Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonAssigned, Message: "test", ObservedGeneration: a.Generation})
		return h.c.Status().Update(h.ctx(), &a)
	}).WithTimeout(10 * time.Second).Should(Succeed())
	g.Eventually(func() error {
		var a v1alpha1.Actor
		if err := h.c.Get(h.ctx(), h.key(name), &a); err != nil {
			return err
		}
		if a.Labels == nil {
			a.Labels = map[string]string{}
		}
		if pod == "" {
			delete(a.Labels, v1alpha1.AssignedHostLabel)
		} else {
			a.Labels[v1alpha1.AssignedHostLabel] = pod
		}
		return h.c.Update(h.ctx(), &a)
	}).WithTimeout(10 * time.Second).Should(Succeed())
}

func (h *harness) get(name string) *v1alpha1.Actor {
	h.t.Helper()
	var a v1alpha1.Actor
	if err := h.c.Get(h.ctx(), h.key(name), &a); err != nil {
		h.t.Fatal(err)
	}
	return &a
}

// ready returns the actor's Ready condition, or a placeholder.
func (h *harness) ready(name string) metav1.Condition {
	var a v1alpha1.Actor
	if err := h.c.Get(h.ctx(), h.key(name), &a); err != nil {
		return metav1.Condition{Reason: "Get: " + err.Error()}
	}
	if c := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionReady); c != nil {
		return *c
	}
	return metav1.Condition{Reason: "NoReadyCondition"}
}

func (h *harness) waitReason(name, reason string, timeout time.Duration) metav1.Condition {
	h.t.Helper()
	var c metav1.Condition
	NewWithT(h.t).Eventually(func() string {
		c = h.ready(name)
		return c.Reason
	}).WithTimeout(timeout).WithPolling(50*time.Millisecond).Should(Equal(reason), func() string { return "Ready: " + c.Message })
	return c
}

// chain reads the actor's chain from the host's endpoint, verifying every
// event as troupe chain show --from-host does.
func (h *harness) chain(name string) ([]*chain.Event, error) {
	resp, err := http.Get(h.base + "/actors/" + h.ns + "/" + name + "/chain")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("HTTP %s: %s", resp.Status, b)
	}
	var out []*chain.Event
	err = chain.ReadJSON(resp.Body, func(e *chain.Event) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// custom returns the data of the actor's CustomEvents of type typ.
func (h *harness) custom(name, typ string) []map[string]any {
	events, err := h.chain(name)
	if err != nil {
		return nil
	}
	var out []map[string]any
	for _, e := range events {
		if e.Kind != chain.KindCustom {
			continue
		}
		var d struct {
			Type string `json:"type"`
			Data string `json:"data"`
		}
		if json.Unmarshal(e.Data, &d) != nil || d.Type != typ {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(d.Data)
		if err != nil {
			continue
		}
		var m map[string]any
		if json.Unmarshal(raw, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// actorDir is the actor's directory on the node.
func (h *harness) actorDir(name string) string {
	return actordir.Path(h.dataDir, h.ns, name, h.get(name).Status.ActorID)
}

// chainFile is the actor's chain file on the node.
func (h *harness) chainFile(name string) string {
	return actordir.ChainPath(h.actorDir(name))
}

// metrics returns /metrics.
func (h *harness) metrics() string {
	resp, err := http.Get(h.base + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// events returns the notes of the Events recorded on an actor.
func (h *harness) events(name string) []string {
	var list corev1.EventList
	var out []string
	if err := h.c.List(h.ctx(), &list, client.InNamespace(h.ns)); err == nil {
		for _, e := range list.Items {
			if e.InvolvedObject.Name == name {
				out = append(out, e.Reason+": "+e.Message)
			}
		}
	}
	return out
}

// actor returns what GET /actors says about an actor.
func (h *harness) actor(name string) ActorInfo {
	resp, err := http.Get(h.base + "/actors")
	if err != nil {
		return ActorInfo{State: err.Error()}
	}
	defer resp.Body.Close()
	var list []ActorInfo
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return ActorInfo{State: err.Error()}
	}
	for _, a := range list {
		if a.Namespace == h.ns && a.Name == name {
			return a
		}
	}
	return ActorInfo{State: "absent"}
}

func contextWithCleanup(t testing.TB) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx, cancel
}

// counterValue reads troupe_host_status_writes_total{result}.
func counterValue(m *hostMetrics, result string) float64 {
	return promtestutil.ToFloat64(m.statusWrites.WithLabelValues(result))
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
