//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	theaterv1alpha1 "github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/chain"
)

// previous is the release the upgrade test starts from: its source tree
// (chart and samples) and its image, already on the nodes. hack/e2e-local.sh
// exports the tree of tag v0.1.0 (or, in a clone without tags, of its
// commit) and builds its image.
type previous struct {
	tree, image, version string
	imageArgs            []string
}

func previousRelease(t *testing.T) previous {
	t.Helper()
	p := previous{
		tree:    os.Getenv("TROUPE_E2E_PREVIOUS_TREE"),
		image:   os.Getenv("TROUPE_E2E_PREVIOUS_IMAGE"),
		version: os.Getenv("TROUPE_E2E_PREVIOUS_VERSION"),
	}
	if p.tree == "" || p.image == "" {
		t.Skip("TROUPE_E2E_PREVIOUS_TREE and TROUPE_E2E_PREVIOUS_IMAGE are not set: the upgrade test needs the previous release's " +
			"source tree and image (make test-e2e-local provides both)")
	}
	if _, err := os.Stat(filepath.Join(p.tree, "charts", "troupe", "Chart.yaml")); err != nil {
		t.Fatalf("TROUPE_E2E_PREVIOUS_TREE %s has no chart: %v", p.tree, err)
	}
	var err error
	if p.imageArgs, err = helmImageArgs(p.image); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestUpgrade installs the previous release with its chart and image, runs
// its example Actors, and helm-upgrades to this tree's chart and image: the
// host DaemonSet's rolling update stops each node's actors with a flush, and
// every actor comes back Ready on the new host with its chain continuing
// from the head the old host published (same events, verified, longer) and
// its state kept. It runs after TestTroupe, on the cluster that one leaves.
func TestUpgrade(t *testing.T) {
	prev := previousRelease(t)
	e := newEnv(t)
	u := &upgradeSuite{suite: &suite{env: e}, prev: prev}
	e.step(t, "clean cluster", u.waitClean)
	e.step(t, "install the previous release", u.installPrevious)
	e.step(t, "the previous release's samples", func(t *testing.T) { u.samplesOf(t, prev.tree) })
	e.step(t, "helm upgrade to this build", u.upgrade)
	e.step(t, "uninstall", u.uninstall)
	e.step(t, "clean up", u.deleteNamespaces)
}

type upgradeSuite struct {
	*suite
	prev previous
}

// waitClean waits until an earlier test's namespaces, release and CRD are
// gone (a namespace's deletion goes on after its test), then records what
// else is there, as TestTroupe's preflight does.
func (u *upgradeSuite) waitClean(t *testing.T) {
	poll(t, 3*time.Minute, time.Second, "a cluster without Troupe", func(ctx context.Context) (bool, string, error) {
		if _, err := u.helmCmd(ctx, "status", release, "-n", systemNS); err == nil {
			return false, "release " + release + " exists", nil
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := u.kube.Get(ctx, client.ObjectKey{Name: actorCRD}, &crd); !apierrors.IsNotFound(err) {
			return false, fmt.Sprintf("CRD %s: %v", actorCRD, err), nil
		}
		for _, name := range []string{sampleNS, systemNS} {
			var ns corev1.Namespace
			if err := u.kube.Get(ctx, client.ObjectKey{Name: name}, &ns); !apierrors.IsNotFound(err) {
				return false, fmt.Sprintf("namespace %s: phase %s, %v", name, ns.Status.Phase, err), nil
			}
		}
		return true, "", nil
	})
	u.preflight(t)
}

// installPrevious: helm install of the previous release's chart with its
// image; its hosts' Leases declare no protocol version (it predates them),
// which this build's manager reads as version 1.
func (u *upgradeSuite) installPrevious(t *testing.T) {
	start := time.Now()
	u.helmOK(t, u.chartArgs("install", u.prev.tree, u.prev.imageArgs)...)
	t.Logf("helm install of %s (%s): %v", u.prev.version, u.prev.image, time.Since(start).Round(100*time.Millisecond))
	hosts := u.readyHostPods(t, nil)
	for _, p := range hosts {
		if got := p.Spec.Containers[0].Image; got != u.prev.image {
			t.Fatalf("host pod %s runs %q, want the previous release's %q", p.Name, got, u.prev.image)
		}
	}
	u.checkLeases(t, hosts, "1000", 3)
	u.leaseProtocols(t, hosts)
}

// leaseProtocols logs the protocol version each host pod's Lease declares
// and returns them by pod.
func (u *upgradeSuite) leaseProtocols(t *testing.T, hosts []corev1.Pod) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range hosts {
		var l coordinationv1.Lease
		if err := u.kube.Get(t.Context(), client.ObjectKey{Namespace: systemNS, Name: p.Name}, &l); err != nil {
			t.Fatalf("the Lease of %s: %v", p.Name, err)
		}
		v, ok := l.Annotations[theaterv1alpha1.ProtocolVersionAnnotation]
		if !ok {
			v = "(none: version 1)"
		}
		out[p.Name] = v
		t.Logf("host %s (%s) declares protocol version %s", p.Name, p.Spec.Containers[0].Image, v)
	}
	return out
}

// upgrade: helm upgrade to this tree's chart and image, as a user with
// the same values would. The host DaemonSet replaces one node's pod at a
// time, and the old pod, on SIGTERM, stops its actors, flushes their
// chains and publishes their final heads before it goes: each chain
// continues on the new pod from that head, with the old run's ActorStop
// and the new run's ActorStart after it, and each actor keeps its state.
func (u *upgradeSuite) upgrade(t *testing.T) {
	ctx := t.Context()
	var ds appsv1.DaemonSet
	if err := u.kube.Get(ctx, client.ObjectKey{Namespace: systemNS, Name: hostName}, &ds); err != nil {
		t.Fatal(err)
	}
	// What makes the rolling update safe: one node at a time, and time
	// for the old pod to stop its actors and flush (the host needs
	// --stop-grace, 10s, for a call in progress, then its final writes).
	if st := ds.Spec.UpdateStrategy; st.Type != appsv1.RollingUpdateDaemonSetStrategyType ||
		st.RollingUpdate == nil || st.RollingUpdate.MaxUnavailable == nil || st.RollingUpdate.MaxUnavailable.IntValue() != 1 {
		t.Fatalf("the host DaemonSet's update strategy is %+v, want RollingUpdate with maxUnavailable 1", st)
	}
	if g := ds.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g < 30 {
		t.Fatalf("the host pods' terminationGracePeriodSeconds is %v, want at least 30 to stop and flush", g)
	}
	before := u.snapshots(t)
	runs := helloCount(t, before["hello"].chain)
	var olds []string
	for _, sn := range before {
		if !slices.Contains(olds, sn.hostPod) {
			olds = append(olds, sn.hostPod)
		}
	}

	start := time.Now()
	u.helmOK(t, u.chartArgs("upgrade", u.root, u.imageArgs)...)
	t.Logf("helm upgrade --wait from %s: %v", u.prev.version, time.Since(start).Round(100*time.Millisecond))

	want := os.Getenv("TROUPE_E2E_IMAGE")
	hosts := u.readyHostPods(t, olds)
	for _, p := range hosts {
		if got := p.Spec.Containers[0].Image; got != want {
			t.Errorf("host pod %s runs %q after the upgrade, want %q", p.Name, got, want)
		}
	}
	u.checkLeases(t, hosts, "1000", 3)
	for pod, v := range u.leaseProtocols(t, hosts) {
		if v != fmt.Sprint(theaterv1alpha1.ProtocolVersion) {
			t.Errorf("host %s declares protocol version %s, want %d", pod, v, theaterv1alpha1.ProtocolVersion)
		}
	}
	u.managerRolledOut(t, want, func(c *corev1.Container) bool { return c.Image == want })

	chains := u.continued(t, before, sampleActors)
	t.Logf("all actors Ready again on %s %v after helm upgrade began", want, time.Since(start).Round(10*time.Millisecond))
	if c := chains["hello"]; c.events[0].Kind != chain.KindSegmentStart {
		// The state file the previous release wrote is read by this one.
		if got := helloCount(t, c); got != runs+1 {
			t.Errorf("hello's run count is %d after the upgrade, was %d: want %d (its state survives the upgrade)", got, runs, runs+1)
		}
	}
}
