package controllers

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/envtestutil"
)

// testInvalidSpecNotRestarted: a host that cannot turn the spec into
// settings for its engine reports InvalidSpec; restarting would fail the
// same way forever, so the actor stays Failed, with the host's message,
// until its spec changes.
func testInvalidSpecNotRestarted(t *testing.T, env *envtestutil.Env) {
	h := newHarness(t, env, harnessOptions{}) // restartPolicy OnFailure, backoff 1s
	g := NewWithT(t)
	h.host("host-1", h.node("n1", nil), 10)
	h.actor("bad")
	a := h.placed("bad")
	const msg = "spec.handlers[runtime].config: maxLogBytes is 0: must be between 1 and 1048576"
	h.report("bad", "host-1", a.Status.Epoch, failed(v1alpha1.ReasonInvalidSpec, msg))

	res := h.settled("bad")
	g.Expect(res.RequeueAfter).To(BeZero(), "no restart is scheduled")
	x, err := h.get("bad")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(x.Status.Phase).To(Equal(v1alpha1.PhaseFailed))
	g.Expect(x.Status.Epoch).To(Equal(a.Status.Epoch))
	g.Expect(x.Status.Restarts).To(BeZero())
	g.Expect(x.Status.NextRestartTime).To(BeNil())
	ready := condition(x, v1alpha1.ConditionReady)
	g.Expect(ready.Reason).To(Equal(v1alpha1.ReasonInvalidSpec))
	g.Expect(ready.Message).To(Equal(msg))
	g.Expect(h.emitted.notes("bad", v1alpha1.EventRestarting)).To(BeEmpty())

	// A new generation is a new start. Its live host runs it again itself;
	// when the new spec sends it elsewhere, the manager restarts it there.
	h.host("host-2", h.node("n2", map[string]string{"tier": "2"}), 10)
	h.update("bad", func(a *v1alpha1.Actor) { a.Spec.NodeSelector = map[string]string{"tier": "2"} })
	h.eventually("bad", func(g Gomega, x *v1alpha1.Actor) {
		g.Expect(x.Status.HostPod).To(Equal("host-2"))
		g.Expect(x.Status.Epoch).To(Equal(a.Status.Epoch + 1))
		g.Expect(x.Status.Phase).To(Equal(v1alpha1.PhaseScheduled))
	})
	h.expectEvent("bad", v1alpha1.EventRestarting, "for spec generation 2")
}

// testComponentSourceMissing: a host waiting for the ConfigMap that holds
// the module keeps the run (phase unchanged) and says why in Ready; that is
// no failure, and the manager neither restarts nor moves the actor. Once
// the ConfigMap is there the host starts it.
func testComponentSourceMissing(t *testing.T, env *envtestutil.Env) {
	h := newHarness(t, env, harnessOptions{})
	g := NewWithT(t)
	h.host("host-1", h.node("n1", nil), 10)
	h.actor("early", func(a *v1alpha1.Actor) {
		a.Spec.Component = v1alpha1.ComponentSource{ConfigMap: &v1alpha1.ComponentConfigMap{Name: "early-wasm", Key: "actor.wasm"}}
	})
	a := h.placed("early")
	h.report("early", "host-1", a.Status.Epoch, func(a *v1alpha1.Actor) {
		setHostReady(a, metav1.ConditionFalse, v1alpha1.ReasonComponentSourceMissing, `ConfigMap "early-wasm" not found: waiting for it`)
	})
	res := h.settled("early")
	g.Expect(res.RequeueAfter).To(BeZero())
	x, err := h.get("early")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(x.Status.Phase).To(Equal(v1alpha1.PhaseScheduled))
	g.Expect(x.Status.HostPod).To(Equal("host-1"))
	g.Expect(x.Status.Epoch).To(Equal(a.Status.Epoch))
	g.Expect(x.Status.Restarts).To(BeZero())
	g.Expect(x.Status.NextRestartTime).To(BeNil())
	g.Expect(condition(x, v1alpha1.ConditionScheduled).Reason).To(Equal(v1alpha1.ReasonAssigned))
	g.Expect(condition(x, v1alpha1.ConditionReady).Reason).To(Equal(v1alpha1.ReasonComponentSourceMissing))

	h.report("early", "host-1", a.Status.Epoch, running)
	h.settled("early")
	x, err = h.get("early")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(condition(x, v1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
	g.Expect(x.Status.Epoch).To(Equal(a.Status.Epoch))
	g.Expect(x.Status.LastError).To(BeEmpty())
}
