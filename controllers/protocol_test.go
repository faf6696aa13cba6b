package controllers

import (
	"context"
	"strconv"
	"testing"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/envtestutil"
	"github.com/troupe-dev/troupe/internal/placement"
)

// declareProtocol sets (or, with "", removes) the protocol version a fake
// host's Lease declares, as a host of that version would.
func (h *harness) declareProtocol(host, version string) {
	h.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var l coordinationv1.Lease
		if err := h.c.Get(context.Background(), types.NamespacedName{Namespace: h.ns, Name: host}, &l); err != nil {
			return err
		}
		if version == "" {
			delete(l.Annotations, v1alpha1.ProtocolVersionAnnotation)
		} else {
			l.Annotations[v1alpha1.ProtocolVersionAnnotation] = version
		}
		return h.c.Update(context.Background(), &l)
	})
	if err != nil {
		h.t.Fatalf("declaring protocol %q on lease %s: %v", version, host, err)
	}
}

// expectLeaseEvent waits for a Warning Event of the manager about host
// Lease name with reason and a note containing note.
func (h *harness) expectLeaseEvent(name, reason, note string) {
	h.t.Helper()
	h.g.Eventually(func(g Gomega) {
		var list eventsv1.EventList
		g.Expect(h.c.List(context.Background(), &list, client.InNamespace(h.ns))).To(Succeed())
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Kind != "Lease" || e.Regarding.Name != name {
				continue
			}
			seen = append(seen, e.Type+" "+e.Reason+": "+e.Note)
		}
		g.Expect(seen).To(ContainElement(And(HavePrefix(corev1.EventTypeWarning+" "+reason+": "), ContainSubstring(note))))
	}).Should(Succeed(), "no %s Event on lease %s", reason, name)
}

// testProtocolVersions: the manager places actors only on hosts whose Lease
// declares a protocol version it knows (PROTOCOL.md#versions). A host of
// another version gets none; an actor that finds no other host says which
// version that host speaks, and the host's Lease carries a Warning Event
// saying the same.
func testProtocolVersions(t *testing.T, env *envtestutil.Env) {
	h := newHarness(t, env, harnessOptions{})
	node := h.node("n1", nil)
	newer := strconv.Itoa(v1alpha1.ProtocolVersion + 1)
	h.host("host-future", node, 10)
	h.declareProtocol("host-future", newer)
	// The manager reports the Lease once its cache holds the new version:
	// only then is the actor created, or it might see the Lease as it was.
	problem := "host host-future speaks protocol v" + newer + "; this manager knows " + placement.KnownProtocols()
	h.expectLeaseEvent("host-future", v1alpha1.EventUnknownProtocol, problem)

	h.actor("first")
	h.g.Eventually(func(g Gomega) {
		a, err := h.get("first")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(a.Status.HostPod).To(BeEmpty())
		c := condition(a, v1alpha1.ConditionScheduled)
		g.Expect(c.Reason).To(Equal(v1alpha1.ReasonNoHost))
		g.Expect(c.Message).To(Equal("0/1 hosts available: 1 unknown protocol version (" + problem + ")"))
	}).Should(Succeed())
	h.expectEvent("first", v1alpha1.EventNoHost, problem)

	// A host of this build's version takes it and the next one, though the
	// other host is emptier; then it is full.
	h.host("host-current", node, 2)
	h.declareProtocol("host-current", strconv.Itoa(v1alpha1.ProtocolVersion))
	g := NewWithT(t)
	g.Expect(h.placed("first").Status.HostPod).To(Equal("host-current"))
	h.actor("second")
	g.Expect(h.placed("second").Status.HostPod).To(Equal("host-current"), "placed on the emptier host of an unknown version")
	h.actor("third")
	h.g.Eventually(func(g Gomega) {
		a, err := h.get("third")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(condition(a, v1alpha1.ConditionScheduled).Message).To(Equal("0/2 hosts available: 1 full, 1 unknown protocol version (" + problem + ")"))
	}).Should(Succeed())

	// The host's Lease dropping the annotation makes it a host of before
	// versions were published, which speaks version 1: the waiting actor
	// goes there.
	h.declareProtocol("host-future", "")
	g.Expect(h.placed("third").Status.HostPod).To(Equal("host-future"))
}
