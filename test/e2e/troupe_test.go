//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	theaterv1alpha1 "github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/test/dashboard"
)

// TestTroupe installs Troupe with its Helm chart and the example Actors,
// and walks them through what a user does: read chains, flip a feature
// flag, check the node facts and metrics the actors see, lose a host pod,
// upgrade, uninstall. The steps run in order; the first that fails stops
// the suite and dumps the cluster's state. On failure what was installed
// stays, to look at (KEEP_CLUSTER=1).
func TestTroupe(t *testing.T) {
	e := newEnv(t)
	s := &suite{env: e}
	e.step(t, "preflight", s.preflight)
	// The suite's own S3 server lives as long as the suite.
	s.archiveArgs = s.startArchive(t)
	e.step(t, "install", s.install)
	e.step(t, "samples", s.samples)
	e.step(t, "chain heads", s.chainHeads)
	e.step(t, "feature flag", s.featureFlag)
	e.step(t, "gateway", s.gateway)
	e.step(t, "system info", s.systemInfo)
	e.step(t, "metrics", s.metrics)
	e.step(t, "deploy", s.deploy)
	e.step(t, "host restart", s.hostRestart)
	e.step(t, "archive restore", s.archiveRestore)
	e.step(t, "upgrade", s.upgrade)
	e.step(t, "uninstall", s.uninstall)
	e.step(t, "uninstall without keeping the CRD", s.uninstallCRD)
}

// suite carries what one step learns for the next.
type suite struct {
	*env
	node        *corev1.Node
	preexisting map[string]bool // what leftovers finds before the install
	archive     *e2eArchive     // the S3 server the hosts archive to; nil: none
	archiveArgs []string        // the chart values that point the hosts at it
	memoryTotal uint64          // get-system-info's memoryTotal
	cpuCount    uint64
}

// Helm values that keep the suite fast: a dead host's actors move after
// 3s, not 15s.
var fastValues = []string{"--set", "host.leaseDuration=3s"}

// diskValues keep this tree's chart independent of the machine: the disk
// watermark is 1% (the kubelet's own eviction threshold here), not 15%,
// since the build machines share a disk whose free share wanders around
// 15%. The previous release's chart has no watermark (and no such value).
var diskValues = []string{"--set", "host.disk.minFreePercent=1"}

func (s *suite) installArgs(extra ...string) []string {
	return s.chartArgs("install", s.root, s.imageArgs, append(append(slices.Clone(s.archiveArgs), gatewayValues...), extra...)...)
}

// chartArgs are the helm arguments that install (or upgrade to) the chart of
// the source tree root with the image imageArgs names and fastValues (and
// diskValues for this tree's chart).
func (s *suite) chartArgs(verb, root string, imageArgs []string, extra ...string) []string {
	args := []string{verb, release, filepath.Join(root, "charts", "troupe"),
		"-n", systemNS, "--wait", "--timeout", "3m"}
	if verb == "install" {
		args = append(args, "--create-namespace")
	}
	args = append(args, imageArgs...)
	args = append(args, fastValues...)
	if root == s.root {
		args = append(args, diskValues...)
	}
	return append(args, extra...)
}

// preflight refuses a cluster on which an earlier run left Troupe behind:
// the suite checks what an install adds and an uninstall removes.
func (s *suite) preflight(t *testing.T) {
	ctx := t.Context()
	if out, err := s.helmCmd(ctx, "status", release, "-n", systemNS); err == nil {
		t.Fatalf("release %s already exists in %s (a previous run left it; helm uninstall %s -n %s):\n%s", release, systemNS, release, systemNS, out)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := s.kube.Get(ctx, client.ObjectKey{Name: actorCRD}, &crd); !apierrors.IsNotFound(err) {
		t.Fatalf("CRD %s exists already (or can't be read: %v): the suite installs it; remove it first (kubectl delete crd %s)", actorCRD, err, actorCRD)
	}
	var ns corev1.Namespace
	if err := s.kube.Get(ctx, client.ObjectKey{Name: sampleNS}, &ns); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace %s exists already (or can't be read: %v): remove it first", sampleNS, err)
	}
	// Objects named troupe-* that are not Troupe's (the local cluster's own
	// troupe-local:* bindings) are no leftovers.
	left, err := s.leftovers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.preexisting = map[string]bool{}
	for _, o := range left {
		s.preexisting[o] = true
	}
	if len(left) > 0 {
		t.Logf("before the install: %s", strings.Join(left, ", "))
	}
}

// install: helm install with the image under test; both workloads come up
// and every host pod holds a Lease with the values given.
func (s *suite) install(t *testing.T) {
	ctx := t.Context()
	start := time.Now()
	s.helmOK(t, s.installArgs()...)
	t.Logf("helm install --wait: %v", time.Since(start).Round(100*time.Millisecond))

	var dep appsv1.Deployment
	if err := s.kube.Get(ctx, client.ObjectKey{Namespace: systemNS, Name: managerName}, &dep); err != nil {
		t.Fatalf("the manager Deployment: %v", err)
	}
	if dep.Status.AvailableReplicas < 1 {
		t.Fatalf("helm install --wait returned with %d available manager replicas", dep.Status.AvailableReplicas)
	}
	want := os.Getenv("TROUPE_E2E_IMAGE")
	if got := dep.Spec.Template.Spec.Containers[0].Image; got != want {
		t.Errorf("the manager runs image %q, want %q", got, want)
	}
	hosts := s.readyHostPods(t, nil)
	if got := hosts[0].Spec.Containers[0].Image; got != want {
		t.Errorf("the host runs image %q, want %q", got, want)
	}
	s.checkLeases(t, hosts, "1000", 3)
}

// readyHostPods waits until the host DaemonSet is rolled out (every
// scheduled pod updated and Ready, none terminating) and returns its pods.
// Pods named in old are not accepted (they were replaced).
func (s *suite) readyHostPods(t *testing.T, old []string) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	poll(t, 2*time.Minute, 250*time.Millisecond, "the host DaemonSet's pods to be Ready", func(ctx context.Context) (bool, string, error) {
		var ds appsv1.DaemonSet
		if err := s.kube.Get(ctx, client.ObjectKey{Namespace: systemNS, Name: hostName}, &ds); err != nil {
			return false, err.Error(), nil
		}
		st := ds.Status
		if st.ObservedGeneration != ds.Generation || st.DesiredNumberScheduled == 0 ||
			st.UpdatedNumberScheduled != st.DesiredNumberScheduled || st.NumberReady != st.DesiredNumberScheduled {
			return false, fmt.Sprintf("DaemonSet generation %d observed %d, desired %d, updated %d, ready %d",
				ds.Generation, st.ObservedGeneration, st.DesiredNumberScheduled, st.UpdatedNumberScheduled, st.NumberReady), nil
		}
		var list corev1.PodList
		if err := s.kube.List(ctx, &list, client.InNamespace(systemNS), client.MatchingLabels{
			"app.kubernetes.io/instance": release, "app.kubernetes.io/component": "host"}); err != nil {
			return false, err.Error(), nil
		}
		pods = pods[:0]
		for _, p := range list.Items {
			if p.DeletionTimestamp != nil || slices.Contains(old, p.Name) {
				return false, fmt.Sprintf("pod %s is still there", p.Name), nil
			}
			if !podReady(&p) {
				return false, fmt.Sprintf("pod %s is not Ready (%s)", p.Name, p.Status.Phase), nil
			}
			pods = append(pods, p)
		}
		if int32(len(pods)) != st.DesiredNumberScheduled {
			return false, fmt.Sprintf("%d host pods, want %d", len(pods), st.DesiredNumberScheduled), nil
		}
		return true, "", nil
	})
	return pods
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// checkLeases waits until every host pod holds its Lease, naming its node,
// with the given capacity annotation and duration.
func (s *suite) checkLeases(t *testing.T, hosts []corev1.Pod, capacity string, durationSeconds int32) {
	t.Helper()
	for _, p := range hosts {
		poll(t, 30*time.Second, 200*time.Millisecond, "the Lease of host "+p.Name, func(ctx context.Context) (bool, string, error) {
			var l coordinationv1.Lease
			if err := s.kube.Get(ctx, client.ObjectKey{Namespace: systemNS, Name: p.Name}, &l); err != nil {
				return false, err.Error(), nil
			}
			got := fmt.Sprintf("label %s=%q, node %q, capacity %q, duration %v, holder %v",
				theaterv1alpha1.HostLeaseLabel, l.Labels[theaterv1alpha1.HostLeaseLabel],
				l.Annotations[theaterv1alpha1.NodeAnnotation], l.Annotations[theaterv1alpha1.CapacityAnnotation],
				deref(l.Spec.LeaseDurationSeconds), deref(l.Spec.HolderIdentity))
			ok := l.Labels[theaterv1alpha1.HostLeaseLabel] == theaterv1alpha1.HostLeaseLabelValue &&
				l.Annotations[theaterv1alpha1.NodeAnnotation] == p.Spec.NodeName &&
				l.Annotations[theaterv1alpha1.CapacityAnnotation] == capacity &&
				deref(l.Spec.LeaseDurationSeconds) == durationSeconds &&
				deref(l.Spec.HolderIdentity) == p.Name
			return ok, got + fmt.Sprintf(" (want node %q, capacity %q, duration %d, holder %s)", p.Spec.NodeName, capacity, durationSeconds, p.Name), nil
		})
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// samples: the example Actors of config/samples, built and applied the way
// it documents (make samples, kubectl apply --server-side -k), become Ready.
func (s *suite) samples(t *testing.T) { s.samplesOf(t, s.root) }

// samplesOf builds and applies the samples of the source tree root.
func (s *suite) samplesOf(t *testing.T, root string) {
	dir := filepath.Join(s.tmp, "samples")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s.runOK(t, "make", "--no-print-directory", "-C", root, "samples", "SAMPLES_OUT="+filepath.Join(dir, "components"))
	t.Logf("make samples: %v", time.Since(start).Round(100*time.Millisecond))
	yamls, err := filepath.Glob(filepath.Join(root, "config", "samples", "*.yaml"))
	if err != nil || len(yamls) == 0 {
		t.Fatalf("no config/samples/*.yaml (%v)", err)
	}
	for _, y := range yamls {
		if err := copyFile(filepath.Join(dir, filepath.Base(y)), y); err != nil {
			t.Fatal(err)
		}
	}
	s.kubectlOK(t, "create", "namespace", sampleNS)
	start = time.Now()
	t.Log(s.kubectlOK(t, "apply", "--server-side", "-n", sampleNS, "-k", dir))
	for _, name := range sampleActors {
		s.kubectlOK(t, "wait", "-n", sampleNS, "--for=condition=Ready", "--timeout=2m", "actor/"+name)
	}
	t.Logf("applied to all Ready: %v", time.Since(start).Round(100*time.Millisecond))
	for _, name := range sampleActors {
		a := s.actor(t, name)
		if a.Status.Phase != theaterv1alpha1.PhaseRunning || a.Status.ActorID == "" || a.Status.HostPod == "" || a.Status.NodeName == "" {
			t.Errorf("actor %s is Ready but phase %q, actorID %q, hostPod %q, node %q", name, a.Status.Phase, a.Status.ActorID, a.Status.HostPod, a.Status.NodeName)
		}
	}
}

func (s *suite) actor(t *testing.T, name string) *theaterv1alpha1.Actor {
	t.Helper()
	var a theaterv1alpha1.Actor
	if err := s.kube.Get(t.Context(), client.ObjectKey{Namespace: sampleNS, Name: name}, &a); err != nil {
		t.Fatalf("reading actor %s: %v", name, err)
	}
	return &a
}

// chainForwards opens one port-forward to the chain endpoint of each host
// pod the sample actors are assigned to, keyed by pod.
func (s *suite) chainForwards(t *testing.T) map[string]string {
	t.Helper()
	addrs := map[string]string{}
	for _, name := range sampleActors {
		pod := s.actor(t, name).Status.HostPod
		if pod == "" {
			t.Fatalf("actor %s has no host pod", name)
		}
		if addrs[pod] == "" {
			addrs[pod] = s.portForward(t, systemNS, "pod/"+pod, 8082)
		}
	}
	return addrs
}

// settledChain polls until the head and length in the Actor's status equal
// the chain its host serves (status is published at a bounded rate, so it
// may lag a moving chain for a while) and returns both. For a ticking actor
// whose chain never stops moving, it settles for the status naming the
// served chain's event at the status's own length, and cuts the chain there.
func (s *suite) settledChain(t *testing.T, addrs map[string]string, name string) (*theaterv1alpha1.Actor, *servedChain) {
	t.Helper()
	var a theaterv1alpha1.Actor
	var c *servedChain
	poll(t, 30*time.Second, 200*time.Millisecond, "actor "+name+"'s status to show the head its host serves", func(ctx context.Context) (bool, string, error) {
		if err := s.kube.Get(ctx, client.ObjectKey{Namespace: sampleNS, Name: name}, &a); err != nil {
			return false, err.Error(), nil
		}
		addr := addrs[a.Status.HostPod]
		if addr == "" {
			return false, fmt.Sprintf("assigned to %q, not a forwarded host", a.Status.HostPod), nil
		}
		var err error
		if c, err = fetchChain(ctx, addr, sampleNS, name); err != nil {
			return false, err.Error(), nil
		}
		if c.actorID != a.Status.ActorID {
			return false, "", fmt.Errorf("host %s serves the chain of actor id %q, the status says %q", a.Status.HostPod, c.actorID, a.Status.ActorID)
		}
		var head string
		var length int64
		if a.Status.Chain != nil {
			head, length = a.Status.Chain.Head, a.Status.Chain.Length
		}
		last := fmt.Sprintf("status head %.12s length %d, host serves %.12s length %d", head, length, c.head(), c.length())
		if head == c.head() && length == c.length() {
			return true, last, nil
		}
		// A head the host never had is no lag: it is wrong.
		i := c.indexOf(head)
		if head != "" && i < 0 {
			return false, last + " (the status head is not in the served chain)", nil
		}
		// A ticking actor whose ticks call the runtime (feature-flags reads
		// its flag every tick) moves its chain every tick, while the host
		// publishes a moving head at most once per --status-interval: the
		// two are rarely equal at one instant. For such a chain the status
		// must name the served chain's event at its own position (right,
		// just behind), and the chain is cut there so callers see the
		// chain the status describes.
		if i >= 0 && c.count(chain.KindTick, 0) > 0 && int64(c.events[i].Seq)+1 == length {
			c.events = c.events[:i+1]
			return true, last + " (ticking: the status is behind by the events after its head)", nil
		}
		return false, last, nil
	})
	if a.Status.Chain.HeadShort != a.Status.Chain.Head[:12] {
		t.Errorf("actor %s: headShort %q is not the head's first 12 digits (%s)", name, a.Status.Chain.HeadShort, a.Status.Chain.Head)
	}
	return &a, c
}

// chainHeads: each Actor's status.chain.head equals the head its host
// serves on the chain endpoint, read through kubectl port-forward and
// verified event by event.
func (s *suite) chainHeads(t *testing.T) {
	addrs := s.chainForwards(t)
	for _, name := range sampleActors {
		a, c := s.settledChain(t, addrs, name)
		if c.events[0].Seq != 0 || c.count(chain.KindActorStart, 0) != 1 {
			t.Errorf("actor %s: a first run's chain starts at seq %d with %d ActorStart events, want seq 0 and one", name, c.events[0].Seq, c.count(chain.KindActorStart, 0))
		}
		t.Logf("%s: head %s length %d on %s", name, a.Status.Chain.HeadShort, a.Status.Chain.Length, a.Status.HostPod)
	}
	// GET /actors lists what the host runs, with the epochs of the status.
	for pod, addr := range addrs {
		infos := s.hostActors(t, addr)
		for _, name := range sampleActors {
			a := s.actor(t, name)
			if a.Status.HostPod != pod {
				continue
			}
			i := slices.IndexFunc(infos, func(in hostActor) bool { return in.Namespace == sampleNS && in.Name == name })
			if i < 0 {
				t.Errorf("GET /actors on %s does not list %s: %+v", pod, name, infos)
				continue
			}
			if in := infos[i]; in.State != "Running" || in.Epoch != a.Status.Epoch || in.ActorID != a.Status.ActorID {
				t.Errorf("GET /actors on %s: %s is %+v, the status says epoch %d, id %s", pod, name, in, a.Status.Epoch, a.Status.ActorID)
			}
		}
	}
}

type hostActor struct {
	Namespace, Name, ActorID, State string
	Epoch                           int64
}

func (s *suite) hostActors(t *testing.T, addr string) []hostActor {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/actors", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /actors: %v", err)
	}
	defer resp.Body.Close()
	var out []hostActor
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("GET /actors: %v", err)
	}
	return out
}

type featurePath struct {
	Feature string `json:"feature"`
	Enabled bool   `json:"enabled"`
	Path    string `json:"path"`
	Trigger string `json:"trigger"`
}

func featurePaths(t *testing.T, c *servedChain) ([]int, []featurePath) {
	t.Helper()
	idx, data, err := c.custom("feature_path")
	if err != nil {
		t.Fatal(err)
	}
	out := make([]featurePath, len(data))
	for i, d := range data {
		if err := json.Unmarshal(d, &out[i]); err != nil {
			t.Fatalf("feature_path event %q: %v", d, err)
		}
	}
	return idx, out
}

// featureFlag: editing the feature-flags ConfigMap switches the running
// actor to the new path at a tick, recorded as a feature_path event, with
// no restart.
func (s *suite) featureFlag(t *testing.T) {
	const name = "feature-flags"
	addrs := s.chainForwards(t)
	before, c := s.settledChain(t, addrs, name)
	_, paths := featurePaths(t, c)
	if len(paths) == 0 || paths[len(paths)-1].Path != "old-ui" || paths[len(paths)-1].Enabled {
		t.Fatalf("before the edit, the feature_path events are %+v, want the last on old-ui (NEW_UI=false)", paths)
	}
	oldLen := len(c.events)
	starts := c.count(chain.KindActorStart, 0)

	edited := time.Now()
	s.kubectlOK(t, "patch", "configmap", "feature-flags", "-n", sampleNS, "--type=merge", "-p", `{"data":{"NEW_UI":"true"}}`)
	var got featurePath
	poll(t, 30*time.Second, 200*time.Millisecond, "a feature_path event on new-ui", func(ctx context.Context) (bool, string, error) {
		var err error
		if c, err = fetchChain(ctx, addrs[before.Status.HostPod], sampleNS, name); err != nil {
			return false, err.Error(), nil
		}
		idx, paths := featurePaths(t, c)
		for i, p := range paths {
			if idx[i] >= oldLen {
				got = p
				return true, "", nil
			}
		}
		return false, fmt.Sprintf("chain length %d, no feature_path event after %d", len(c.events), oldLen), nil
	})
	t.Logf("feature_path %+v recorded %v after the edit", got, time.Since(edited).Round(10*time.Millisecond))
	if got != (featurePath{Feature: "new_ui", Enabled: true, Path: "new-ui", Trigger: "tick"}) {
		t.Errorf("the feature_path event after the edit is %+v, want new_ui enabled on new-ui at a tick", got)
	}
	if n := c.count(chain.KindActorStart, 0); n != starts {
		t.Errorf("the chain holds %d ActorStart events after the edit, %d before: the actor was restarted", n, starts)
	}
	after, _ := s.settledChain(t, addrs, name)
	if after.Status.Restarts != 0 || after.Status.Epoch != before.Status.Epoch || !meta.IsStatusConditionTrue(after.Status.Conditions, theaterv1alpha1.ConditionReady) {
		t.Errorf("after the edit: restarts %d, epoch %d (was %d), Ready %v; want 0 restarts, the same epoch, Ready",
			after.Status.Restarts, after.Status.Epoch, before.Status.Epoch, meta.IsStatusConditionTrue(after.Status.Conditions, theaterv1alpha1.ConditionReady))
	}
}

type systemInfo struct {
	Hostname        string  `json:"hostname"`
	OSType          string  `json:"osType"`
	OSRelease       string  `json:"osRelease"`
	CPUCount        uint64  `json:"cpuCount"`
	MemoryTotal     uint64  `json:"memoryTotal"`
	MemoryAvailable uint64  `json:"memoryAvailable"`
	Uptime          uint64  `json:"uptime"`
	Error           *string `json:"error"`
}

// systemInfo: the monitoring actor's get-system-info reports the node (its
// name, its memory and CPUs as the kubelet reports them), not the pod.
func (s *suite) systemInfo(t *testing.T) {
	const name = "monitoring"
	addrs := s.chainForwards(t)
	a, c := s.settledChain(t, addrs, name)
	var info *systemInfo
	for i := range c.events {
		if ev := &c.events[i]; ev.Kind == chain.KindRuntimeOperation && ev.Op == "get-system-info" {
			info = new(systemInfo)
			if err := json.Unmarshal(ev.Data, info); err != nil {
				t.Fatalf("get-system-info event %d: %q: %v", ev.Seq, ev.Data, err)
			}
		}
	}
	if info == nil {
		t.Fatalf("the monitoring chain (%d events) has no get-system-info event", len(c.events))
	}
	t.Logf("get-system-info: %+v", *info)

	s.node = new(corev1.Node)
	if err := s.kube.Get(t.Context(), client.ObjectKey{Name: a.Status.NodeName}, s.node); err != nil {
		t.Fatalf("reading node %s: %v", a.Status.NodeName, err)
	}
	capMem := s.node.Status.Capacity.Memory().Value()
	capCPU := s.node.Status.Capacity.Cpu().Value()
	if info.Error != nil {
		t.Errorf("get-system-info recorded an error: %s", *info.Error)
	}
	if info.Hostname != s.node.Name {
		t.Errorf("get-system-info hostname %q, want the node's name %q (not the pod's)", info.Hostname, s.node.Name)
	}
	if info.OSType != "linux" || info.OSRelease == "" {
		t.Errorf("get-system-info os %q release %q, want linux and a kernel release", info.OSType, info.OSRelease)
	}
	// Both read MemTotal of the node's /proc/meminfo; the kubelet may
	// subtract reserved memory, so allow a few percent.
	if info.MemoryTotal == 0 || math.Abs(float64(info.MemoryTotal)-float64(capMem)) > 0.03*float64(capMem) {
		t.Errorf("get-system-info memoryTotal %d, the node's capacity.memory is %d: want within 3%%", info.MemoryTotal, capMem)
	}
	if info.MemoryAvailable == 0 || info.MemoryAvailable > info.MemoryTotal {
		t.Errorf("get-system-info memoryAvailable %d of memoryTotal %d", info.MemoryAvailable, info.MemoryTotal)
	}
	if int64(info.CPUCount) != capCPU {
		t.Errorf("get-system-info cpuCount %d, the node's capacity.cpu is %d", info.CPUCount, capCPU)
	}
	if info.Uptime == 0 {
		t.Errorf("get-system-info uptime 0")
	}
	s.memoryTotal, s.cpuCount = info.MemoryTotal, info.CPUCount
}

// metrics: the hosts' /metrics, scraped through the troupe-host-metrics
// Service, carries the monitoring actor's record-metric values labelled
// with the Actor's namespace and name.
func (s *suite) metrics(t *testing.T) {
	if s.node == nil {
		t.Fatal("the system info step did not run")
	}
	hosts := s.readyHostPods(t, nil)
	target := "svc/" + hostMetrics
	if len(hosts) > 1 {
		// The Service picks any host; the monitoring actor's metrics are on its own.
		target = "pod/" + s.actor(t, "monitoring").Status.HostPod
	}
	addr := s.portForward(t, systemNS, target, 8080)
	var fams map[string]*dto.MetricFamily
	poll(t, 30*time.Second, 500*time.Millisecond, "the actors' metrics on "+target, func(ctx context.Context) (bool, string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error(), nil
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			return false, resp.Status + ": " + string(b), nil
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		if fams, err = p.TextToMetricFamilies(resp.Body); err != nil {
			return false, "", fmt.Errorf("parsing /metrics: %w", err)
		}
		_, ok := metricValue(fams, "troupe_actor_memory_used_bytes", "monitoring")
		return ok, "no troupe_actor_memory_used_bytes for monitoring yet", nil
	})
	want := map[string]func(v float64) bool{
		"memory_used_bytes":      func(v float64) bool { return v > 0 && v < float64(s.memoryTotal) },
		"memory_available_bytes": func(v float64) bool { return v > 0 && v < float64(s.memoryTotal) },
		"memory_usage_percent":   func(v float64) bool { return v > 0 && v < 100 },
		"cpus":                   func(v float64) bool { return v == float64(s.cpuCount) },
		"uptime_seconds":         func(v float64) bool { return v > 0 },
		"actor_heap_bytes":       func(v float64) bool { return v > 0 },
	}
	for metric, ok := range want {
		v, found := metricValue(fams, "troupe_actor_"+metric, "monitoring")
		switch {
		case !found:
			t.Errorf("no troupe_actor_%s{namespace=%q,actor=\"monitoring\"}", metric, sampleNS)
		case !ok(v):
			t.Errorf("troupe_actor_%s{actor=\"monitoring\"} = %g: implausible (memory total %d, cpus %d)", metric, v, s.memoryTotal, s.cpuCount)
		default:
			t.Logf("monitoring %s = %g", metric, v)
		}
	}
	if v, found := metricValue(fams, "troupe_actor_request_duration_seconds_recorded", "structured-logging"); !found || v < 1 {
		t.Errorf("troupe_actor_request_duration_seconds_recorded_count{actor=\"structured-logging\"}: found %v, count %g; want a count of requests", found, v)
	}
	if v, found := metricValue(fams, "troupe_actor_requests_handled_total", "structured-logging"); !found || v < 1 {
		t.Errorf("troupe_actor_requests_handled_total{actor=\"structured-logging\"}: found %v, value %g; want a count of requests", found, v)
	}
	lintScrape(t, fams)
	checkDashboard(t, s.root, fams)
	if len(hosts) == 1 {
		if v, found := metricValue(fams, "troupe_host_actors_running", ""); !found || v != float64(len(sampleActors)) {
			t.Errorf("troupe_host_actors_running = %g (found %v), want %d", v, found, len(sampleActors))
		}
	}
}

// lintScrape runs Prometheus' linter over a host's whole /metrics: the
// host's families, the libraries', and the example actors' own.
func lintScrape(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	list := make([]*dto.MetricFamily, 0, len(fams))
	for _, f := range fams {
		list = append(list, f)
	}
	problems, err := promlint.NewWithMetricFamilies(list).Lint()
	if err != nil {
		t.Fatalf("promlint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// checkDashboard: every metric a query of the chart's Grafana dashboard
// reads is in this real scrape of a host, so no panel is empty because of a
// wrong name (the packaging test checks the queries parse).
func checkDashboard(t *testing.T, root string, fams map[string]*dto.MetricFamily) {
	t.Helper()
	have := map[string]bool{}
	for name := range fams {
		have[name] = true
	}
	qs, err := dashboard.Load(filepath.Join(root, "charts/troupe/dashboards/troupe-overview.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		names, err := dashboard.Metrics(q)
		if err != nil {
			t.Error(err)
			continue
		}
		for _, n := range names {
			if _, ok := dashboard.Family(n, have); !ok {
				t.Errorf("the dashboard's %s reads %s, which the host's /metrics does not have", q.Where, n)
			}
		}
	}
}

// metricValue finds the series of family name for the sample actor (a
// gauge's or counter's value or a summary's count); with actor "", the
// family's first series.
func metricValue(fams map[string]*dto.MetricFamily, name, actor string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if actor != "" && (labels["namespace"] != sampleNS || labels["actor"] != actor) {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Summary != nil:
			return float64(m.GetSummary().GetSampleCount()), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

// snapshot is what an actor's status said before its host went away.
type snapshot struct {
	epoch    int64
	head     string
	length   int64
	actorID  string
	hostPod  string
	node     string
	restarts int32
	chain    *servedChain
}

func (s *suite) snapshots(t *testing.T) map[string]snapshot {
	t.Helper()
	addrs := s.chainForwards(t)
	out := map[string]snapshot{}
	for _, name := range sampleActors {
		a, c := s.settledChain(t, addrs, name)
		out[name] = snapshot{epoch: a.Status.Epoch, head: a.Status.Chain.Head, length: a.Status.Chain.Length,
			actorID: a.Status.ActorID, hostPod: a.Status.HostPod, node: a.Status.NodeName, restarts: a.Status.Restarts, chain: c}
	}
	return out
}

// helloCount is the count of hello's last "greeted" event: its runs.
func helloCount(t *testing.T, c *servedChain) int {
	t.Helper()
	_, data, err := c.custom("greeted")
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 {
		t.Fatalf("hello's chain has no greeted event")
	}
	var v struct {
		Count int `json:"count"`
	}
	if err := json.Unmarshal(data[len(data)-1], &v); err != nil {
		t.Fatalf("greeted event %q: %v", data[len(data)-1], err)
	}
	return v.Count
}

// continued waits until each named actor runs again on a host pod other
// than the one in before, Ready, and checks that its chain went on from
// where it was: the old head is an ancestor of the new one at the same
// position, the old run stopped and a new one started after it, the actor
// kept its id and was not restarted. It returns the chains.
func (s *suite) continued(t *testing.T, before map[string]snapshot, names []string) map[string]*servedChain {
	t.Helper()
	for _, name := range names {
		old := before[name]
		poll(t, 2*time.Minute, 250*time.Millisecond, "actor "+name+" to run again on a new host pod", func(ctx context.Context) (bool, string, error) {
			var a theaterv1alpha1.Actor
			if err := s.kube.Get(ctx, client.ObjectKey{Namespace: sampleNS, Name: name}, &a); err != nil {
				return false, err.Error(), nil
			}
			ready := meta.FindStatusCondition(a.Status.Conditions, theaterv1alpha1.ConditionReady)
			last := fmt.Sprintf("phase %s, host %q, epoch %d, Ready %v", a.Status.Phase, a.Status.HostPod, a.Status.Epoch, ready)
			return a.Status.HostPod != "" && a.Status.HostPod != old.hostPod && a.Status.Epoch > old.epoch &&
				a.Status.Phase == theaterv1alpha1.PhaseRunning && ready != nil && ready.Status == metav1.ConditionTrue, last, nil
		})
	}
	addrs := s.chainForwards(t)
	chains := map[string]*servedChain{}
	for _, name := range names {
		old := before[name]
		a, c := s.settledChain(t, addrs, name)
		chains[name] = c
		if a.Status.ActorID != old.actorID || a.Status.Restarts != old.restarts {
			t.Errorf("actor %s: id %s restarts %d, was %s and %d", name, a.Status.ActorID, a.Status.Restarts, old.actorID, old.restarts)
		}
		i := c.indexOf(old.head)
		if i < 0 && c.events[0].Kind == chain.KindSegmentStart && (a.Status.NodeName != old.node || restoredSegment(c.events[0])) {
			// Moved to another node, or restored from the archive to a node
			// that lost its data: the chain there is a new segment linked
			// to the last head the old host published (or archived), at or
			// after the one seen before.
			if int64(c.events[0].Seq) < old.length {
				t.Errorf("actor %s moved to node %s: its segment starts at seq %d, before the old length %d", name, a.Status.NodeName, c.events[0].Seq, old.length)
			}
			t.Logf("%s: a new segment on node %s from seq %d links to %s", name, a.Status.NodeName, c.events[0].Seq, c.events[0].Parent.Short())
			continue
		}
		if i < 0 {
			t.Errorf("actor %s: the head before (%.12s, length %d) is not in the chain host %s serves now (first event seq %d %s, head %.12s length %d)",
				name, old.head, old.length, a.Status.HostPod, c.events[0].Seq, c.events[0].Kind, c.head(), c.length())
			continue
		}
		// The whole old chain is the new chain's prefix.
		if len(old.chain.events) > i+1 || !slices.EqualFunc(old.chain.events, c.events[:len(old.chain.events)], func(a, b chain.Event) bool { return a.Hash == b.Hash }) {
			t.Errorf("actor %s: the chain served before (%d events) is not a prefix of the one served now", name, len(old.chain.events))
		}
		if int64(c.events[i].Seq) != old.length-1 || c.length() <= old.length {
			t.Errorf("actor %s: the old head is event %d (want %d) and the chain's length is %d (was %d)", name, c.events[i].Seq, old.length-1, c.length(), old.length)
		}
		if c.count(chain.KindActorStop, i+1) < 1 || c.count(chain.KindActorStart, i+1) < 1 {
			t.Errorf("actor %s: after the old head the chain has %d ActorStop and %d ActorStart events, want the old run's stop and the new run's start",
				name, c.count(chain.KindActorStop, i+1), c.count(chain.KindActorStart, i+1))
		}
		t.Logf("%s: %.12s (length %d, epoch %d) continued to %.12s (length %d, epoch %d) on %s",
			name, old.head, old.length, old.epoch, c.head(), c.length(), a.Status.Epoch, a.Status.HostPod)
	}
	return chains
}

// hostRestart: a deleted host pod is replaced by the DaemonSet, its actors
// come back Ready on the new pod, and their chains and state continue from
// the node's data directory.
func (s *suite) hostRestart(t *testing.T) {
	before := s.snapshots(t)
	runs := helloCount(t, before["hello"].chain)
	pod := before["hello"].hostPod
	var moved []string
	for _, name := range sampleActors {
		if before[name].hostPod == pod {
			moved = append(moved, name)
		}
	}

	start := time.Now()
	if err := s.kube.Delete(t.Context(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: systemNS, Name: pod}}); err != nil {
		t.Fatalf("deleting host pod %s: %v", pod, err)
	}
	s.readyHostPods(t, []string{pod})
	t.Logf("host pod %s replaced in %v", pod, time.Since(start).Round(10*time.Millisecond))
	chains := s.continued(t, before, moved)
	t.Logf("%v Ready again %v after the deletion", moved, time.Since(start).Round(10*time.Millisecond))
	if c := chains["hello"]; c.events[0].Kind != chain.KindSegmentStart {
		// State lives on the node: it survives where the chain continued.
		if got := helloCount(t, c); got != runs+1 {
			t.Errorf("hello's run count is %d after the host restart, was %d: want %d (its state survives on the node)", got, runs, runs+1)
		}
	}
}

// upgrade: helm upgrade with other values changes the workloads (the
// hosts' capacity reaches their Leases, the manager's log level its
// flags), and the actors come back Ready, their chains continuing.
func (s *suite) upgrade(t *testing.T) {
	ctx := t.Context()
	before := s.snapshots(t)
	start := time.Now()
	s.helmOK(t, "upgrade", release, filepath.Join(s.root, "charts", "troupe"), "-n", systemNS,
		"--reuse-values", "--set", "host.capacity=7", "--set", "manager.logLevel=debug", "--wait", "--timeout", "3m")
	t.Logf("helm upgrade --wait: %v", time.Since(start).Round(100*time.Millisecond))

	var ds appsv1.DaemonSet
	if err := s.kube.Get(ctx, client.ObjectKey{Namespace: systemNS, Name: hostName}, &ds); err != nil {
		t.Fatal(err)
	}
	if args := ds.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--capacity=7") {
		t.Errorf("the host DaemonSet's args after the upgrade: %q, want --capacity=7", args)
	}
	var dep appsv1.Deployment
	if err := s.kube.Get(ctx, client.ObjectKey{Namespace: systemNS, Name: managerName}, &dep); err != nil {
		t.Fatal(err)
	}
	if args := dep.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--zap-log-level=debug") {
		t.Errorf("the manager Deployment's args after the upgrade: %q, want --zap-log-level=debug", args)
	}
	var olds []string
	for _, sn := range before {
		olds = append(olds, sn.hostPod)
	}
	hosts := s.readyHostPods(t, olds)
	s.checkLeases(t, hosts, "7", 3)
	s.managerRolledOut(t, "--zap-log-level=debug", func(c *corev1.Container) bool {
		return slices.Contains(c.Args, "--zap-log-level=debug")
	})
	s.continued(t, before, sampleActors)
	t.Logf("all actors Ready again %v after helm upgrade began", time.Since(start).Round(10*time.Millisecond))
}

// managerRolledOut waits until one manager pod runs, Ready, not
// terminating, with a container that is what wanted says (what names it).
func (s *suite) managerRolledOut(t *testing.T, what string, wanted func(*corev1.Container) bool) {
	t.Helper()
	poll(t, 2*time.Minute, 250*time.Millisecond, "the manager's rollout to "+what, func(ctx context.Context) (bool, string, error) {
		var pods corev1.PodList
		if err := s.kube.List(ctx, &pods, client.InNamespace(systemNS), client.MatchingLabels{
			"app.kubernetes.io/instance": release, "app.kubernetes.io/component": "manager"}); err != nil {
			return false, err.Error(), nil
		}
		var got []string
		for _, p := range pods.Items {
			c := &p.Spec.Containers[0]
			got = append(got, fmt.Sprintf("%s %s %v ready=%v", p.Name, c.Image, c.Args, podReady(&p)))
		}
		ok := len(pods.Items) == 1 && podReady(&pods.Items[0]) && pods.Items[0].DeletionTimestamp == nil &&
			wanted(&pods.Items[0].Spec.Containers[0])
		return ok, strings.Join(got, "; "), nil
	})
}

// uninstall: as docs/install.md says, delete the Actors first (their hosts
// flush their chains), then helm uninstall: nothing of Troupe stays but the
// CRD (crds.keep); then kubectl delete crd removes that too.
func (s *suite) uninstall(t *testing.T) {
	ctx := t.Context()
	lastSeen := s.archivedBeforeDelete(t)
	start := time.Now()
	s.kubectlOK(t, "delete", "actors", "--all", "-n", sampleNS, "--timeout=2m")
	t.Logf("kubectl delete actors: %v", time.Since(start).Round(10*time.Millisecond))
	// Each Actor was released after its host flushed its chain. Events are
	// recorded asynchronously: one may land after its Actor is gone.
	released := map[string]*eventsv1.Event{}
	poll(t, 30*time.Second, 200*time.Millisecond, "a FinalizerRemoved Event for each Actor", func(ctx context.Context) (bool, string, error) {
		var evs eventsv1.EventList
		if err := s.kube.List(ctx, &evs, client.InNamespace(sampleNS)); err != nil {
			return false, err.Error(), nil
		}
		var missing []string
		for _, name := range sampleActors {
			i := slices.IndexFunc(evs.Items, func(ev eventsv1.Event) bool {
				return ev.Regarding.Name == name && ev.Reason == theaterv1alpha1.EventFinalizerRemoved
			})
			if i < 0 {
				missing = append(missing, name)
				continue
			}
			released[name] = &evs.Items[i]
		}
		return len(missing) == 0, fmt.Sprintf("none yet for %v", missing), nil
	})
	for name, ev := range released {
		if ev.Type != corev1.EventTypeNormal {
			t.Errorf("actor %s was released without a flush: %s %s", name, ev.Type, ev.Note)
		}
	}
	s.archivedAfterDelete(t, lastSeen)

	start = time.Now()
	s.helmOK(t, "uninstall", release, "-n", systemNS, "--wait", "--timeout", "2m")
	t.Logf("helm uninstall --wait: %v", time.Since(start).Round(10*time.Millisecond))
	s.nothingLeft(t)

	var crd apiextensionsv1.CustomResourceDefinition
	if err := s.kube.Get(ctx, client.ObjectKey{Name: actorCRD}, &crd); err != nil {
		t.Fatalf("the CRD must outlive helm uninstall (crds.keep=true): %v", err)
	}
	s.kubectlOK(t, "delete", "crd", actorCRD, "--timeout=1m")
	s.crdGone(t)
}

// uninstallCRD: the other documented way, helm upgrade --reuse-values
// --set crds.keep=false before uninstalling, makes helm uninstall delete
// the CRD too.
func (s *suite) uninstallCRD(t *testing.T) {
	start := time.Now()
	s.helmOK(t, s.installArgs()...)
	s.helmOK(t, "upgrade", release, filepath.Join(s.root, "charts", "troupe"), "-n", systemNS,
		"--reuse-values", "--set", "crds.keep=false", "--wait", "--timeout", "3m")
	s.helmOK(t, "uninstall", release, "-n", systemNS, "--wait", "--timeout", "2m")
	t.Logf("install, upgrade, uninstall: %v", time.Since(start).Round(10*time.Millisecond))
	s.nothingLeft(t)
	s.crdGone(t)
	s.deleteNamespaces(t)
}

// deleteNamespaces leaves the cluster as the suite found it: without the
// namespaces it made (their deletion goes on in the background).
func (s *suite) deleteNamespaces(t *testing.T) {
	for _, ns := range []string{sampleNS, systemNS} {
		if err := s.kube.Delete(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); ignoreNotFound(err) != nil {
			t.Errorf("deleting namespace %s: %v", ns, err)
		}
	}
}

func (s *suite) crdGone(t *testing.T) {
	t.Helper()
	poll(t, time.Minute, 250*time.Millisecond, "CRD "+actorCRD+" to be gone", func(ctx context.Context) (bool, string, error) {
		var crd apiextensionsv1.CustomResourceDefinition
		err := s.kube.Get(ctx, client.ObjectKey{Name: actorCRD}, &crd)
		if apierrors.IsNotFound(err) {
			return true, "", nil
		}
		if err != nil {
			return false, err.Error(), nil
		}
		return false, fmt.Sprintf("it exists (deletion %v, finalizers %v)", crd.DeletionTimestamp, crd.Finalizers), nil
	})
}

// nothingLeft waits until no object of Troupe's remains: workloads, pods,
// Services, accounts, RBAC, Leases (the hosts' and the manager's leader
// election's), ConfigMaps and Secrets it may have made.
func (s *suite) nothingLeft(t *testing.T) {
	t.Helper()
	poll(t, 2*time.Minute, 500*time.Millisecond, "nothing of Troupe to be left", func(ctx context.Context) (bool, string, error) {
		all, err := s.leftovers(ctx)
		if err != nil {
			return false, err.Error(), nil
		}
		var left []string
		for _, o := range all {
			if !s.preexisting[o] {
				left = append(left, o)
			}
		}
		return len(left) == 0, strings.Join(left, ", "), nil
	})
}

func (s *suite) leftovers(ctx context.Context) ([]string, error) {
	var left []string
	ours := func(o client.Object) bool {
		l := o.GetLabels()
		return strings.HasPrefix(o.GetName(), "troupe") || l["app.kubernetes.io/part-of"] == "troupe" ||
			l["app.kubernetes.io/instance"] == release || l[theaterv1alpha1.HostLeaseLabel] != ""
	}
	lists := map[string]client.ObjectList{
		"pod": &corev1.PodList{}, "deployment": &appsv1.DeploymentList{}, "daemonset": &appsv1.DaemonSetList{},
		"replicaset": &appsv1.ReplicaSetList{}, "service": &corev1.ServiceList{}, "serviceaccount": &corev1.ServiceAccountList{},
		"configmap": &corev1.ConfigMapList{}, "secret": &corev1.SecretList{}, "role": &rbacv1.RoleList{},
		"rolebinding": &rbacv1.RoleBindingList{}, "lease": &coordinationv1.LeaseList{},
		"clusterrole": &rbacv1.ClusterRoleList{}, "clusterrolebinding": &rbacv1.ClusterRoleBindingList{},
	}
	for kind, list := range lists {
		var opts []client.ListOption
		if kind != "clusterrole" && kind != "clusterrolebinding" {
			opts = append(opts, client.InNamespace(systemNS))
		}
		if err := s.kube.List(ctx, list, opts...); err != nil {
			return nil, fmt.Errorf("listing %ss: %w", kind, err)
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			o := it.(client.Object)
			// Every namespace has these; helm does not delete the namespace.
			if o.GetName() == "default" || o.GetName() == "kube-root-ca.crt" {
				continue
			}
			// The suite's own, made before the install (startArchive).
			if kind == "secret" && o.GetName() == archiveCredentials {
				continue
			}
			// Everything in troupe-system is Troupe's.
			if o.GetNamespace() == systemNS || ours(o) {
				left = append(left, fmt.Sprintf("%s %s", kind, types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}))
			}
		}
	}
	slices.Sort(left)
	return left, nil
}
