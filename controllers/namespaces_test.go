package controllers

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/envtestutil"
)

// declareNamespaces sets the namespaces a fake host's Lease says its host
// runs, as a host started with --actor-namespaces does, and waits until
// the manager's cache holds it.
func (h *harness) declareNamespaces(host, namespaces string) {
	h.t.Helper()
	key := types.NamespacedName{Namespace: h.ns, Name: host}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var l coordinationv1.Lease
		if err := h.c.Get(context.Background(), key, &l); err != nil {
			return err
		}
		l.Annotations[v1alpha1.NamespacesAnnotation] = namespaces
		return h.c.Update(context.Background(), &l)
	})
	if err != nil {
		h.t.Fatalf("declaring namespaces %q on lease %s: %v", namespaces, host, err)
	}
	h.g.Eventually(func(g Gomega) {
		var l coordinationv1.Lease
		g.Expect(h.r.Client.Get(h.ctx, key, &l)).To(Succeed())
		g.Expect(l.Annotations).To(HaveKeyWithValue(v1alpha1.NamespacesAnnotation, namespaces))
	}).Should(Succeed())
}

// testNamespaces: the manager places an actor only on a host whose Lease
// serves its namespace. When none does, the actor waits Pending with
// reason NamespaceNotServed, a message naming the namespace and the chart
// value, and one Warning Event; a host that serves it takes it. An actor on
// a host that does not serve its namespace (put there by a manager that
// predates the annotation, and refused by the host) is moved off it. No
// grace delays the Events: no host is coming back that would serve it.
func testNamespaces(t *testing.T, env *envtestutil.Env) {
	// A wait for a host is reported after a grace; a namespace no host
	// serves is no wait, and is reported at once.
	h := newHarness(t, env, harnessOptions{tune: func(r *ActorReconciler) { r.NoHostGrace = time.Hour }})
	node := h.node("n1", nil)
	h.host("host-elsewhere", node, 10)
	h.declareNamespaces("host-elsewhere", "team-x,team-y")

	h.actor("orphan")
	hint := "no host runs Actors of namespace " + h.ns + ": add it to the chart value host.actorNamespaces"
	h.eventually("orphan", func(g Gomega, a *v1alpha1.Actor) {
		g.Expect(a.Status.HostPod).To(BeEmpty())
		g.Expect(a.Status.Phase).To(Equal(v1alpha1.PhasePending))
		for _, typ := range []string{v1alpha1.ConditionScheduled, v1alpha1.ConditionReady} {
			c := condition(a, typ)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(v1alpha1.ReasonNamespaceNotServed))
			g.Expect(c.Message).To(Equal("0/1 hosts available: 1 namespace not served; " + hint + " (the hosts' --actor-namespaces)"))
		}
	})
	h.expectEvent("orphan", v1alpha1.ReasonNamespaceNotServed, hint)
	h.settled("orphan")
	g := NewWithT(t)
	g.Expect(h.emitted.notes("orphan", v1alpha1.ReasonNamespaceNotServed)).To(HaveLen(1), "one Event for the wait")

	// A host that serves the namespace takes it, though busier.
	h.host("host-mine", node, 10)
	h.declareNamespaces("host-mine", "team-x,"+h.ns)
	g.Expect(h.placed("orphan").Status.HostPod).To(Equal("host-mine"))
	h.actor("sibling")
	g.Expect(h.placed("sibling").Status.HostPod).To(Equal("host-mine"))

	// Were host-mine not to serve the namespace (an older manager put the
	// actor there, and the host refuses it), the manager moves the actor
	// off it, and says why.
	h.declareNamespaces("host-mine", "team-x")
	h.settled("sibling")
	h.eventually("sibling", func(g Gomega, a *v1alpha1.Actor) {
		g.Expect(a.Status.HostPod).To(BeEmpty())
		g.Expect(a.Labels).NotTo(HaveKey(v1alpha1.AssignedHostLabel))
		g.Expect(condition(a, v1alpha1.ConditionScheduled).Reason).To(Equal(v1alpha1.ReasonNamespaceNotServed))
	})
	h.expectEvent("sibling", v1alpha1.ReasonNamespaceNotServed, "host host-mine can't keep the actor (it does not run Actors of namespace "+h.ns+")", hint)
}
