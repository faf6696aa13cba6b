package host

import (
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/chain"
)

// setSuspend changes spec.suspend as a user would.
func (h *harness) setSuspend(name string, suspend bool) {
	h.t.Helper()
	NewWithT(h.t).Eventually(func() error {
		a := h.get(name)
		a.Spec.Suspend = suspend
		return h.c.Update(h.ctx(), a)
	}).WithTimeout(10 * time.Second).Should(Succeed())
}

// lastEvent is the last event of the chain file at path.
func lastEvent(t *testing.T, path string) chain.Event {
	t.Helper()
	var last chain.Event
	if err := chain.ReadFile(path, func(e chain.Event) error {
		last = e
		last.Data = append([]byte(nil), e.Data...)
		return nil
	}); err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return last
}

// testSuspend plays the controller around a suspend: it keeps the
// assignment until the host reports Stopped, then clears it, and resumes
// with a new epoch, here and on another node. The head the host publishes
// at the stop is the chain's very last event, and every later run links to
// it.
func (s *suite) testSuspend(t *testing.T) {
	g := NewWithT(t)
	h := s.startHost(t)
	h.run("napper", h.okSpec("napper"), 20*time.Second)
	running := h.get("napper").Status.Chain.Head

	// suspend: true on an actor still assigned here: stop, flush, and
	// publish the final head while the assignment still allows it.
	h.setSuspend("napper", true)
	c := h.waitReason("napper", v1alpha1.ReasonStopped, 20*time.Second)
	g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(c.Message).To(ContainSubstring("the Actor was suspended: its host stopped it and flushed its chain"))
	g.Expect(c.ObservedGeneration).To(Equal(h.get("napper").Generation))
	g.Expect(h.actor("napper").State).To(Equal("Ended"))
	g.Expect(h.metrics()).To(ContainSubstring("troupe_host_actors_running 0"))
	rep, err := chain.VerifyFile(h.chainFile("napper"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rep.OK()).To(BeTrue())
	st := h.get("napper").Status
	g.Expect(st.Chain.Head).To(Equal(rep.Head.String()), "the status holds the head of the flushed chain")
	g.Expect(st.Chain.Length).To(Equal(int64(rep.Length)))
	g.Expect(st.Chain.Head).NotTo(Equal(running), "the stop itself is in the chain")
	last := lastEvent(t, h.chainFile("napper"))
	g.Expect(last.Kind).To(Equal(chain.KindActorStop))
	g.Expect(string(last.Data)).To(ContainSubstring("the Actor was suspended"))
	g.Eventually(h.events).WithArguments("napper").Should(ContainElement(ContainSubstring("Stopped: the Actor was suspended")))

	// The controller clears the assignment; the host forgets the actor and
	// writes nothing more.
	h.assign("napper", "", 1)
	g.Eventually(h.actor).WithArguments("napper").WithTimeout(10 * time.Second).Should(HaveField("State", "absent"))
	suspendedHead, suspendedLength := st.Chain.Head, st.Chain.Length

	// Resumed here with a new epoch: the local chain goes on from that head.
	h.setSuspend("napper", false)
	h.assign("napper", h.pod, 2)
	g.Eventually(h.actor).WithArguments("napper").WithTimeout(20 * time.Second).Should(
		And(HaveField("Epoch", int64(2)), HaveField("State", "Running")))
	// The host runs it before its status says so: wait for the status too,
	// or the next suspend's wait for Stopped sees the first suspend's.
	h.waitReason("napper", v1alpha1.ReasonRunning, 20*time.Second)
	old, err := filepath.Glob(h.chainFile("napper") + ".*.old")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(old).To(BeEmpty(), "the chain on this node ends at the status head: no new segment")
	var resumedAt chain.Event
	g.Expect(chain.ReadFile(h.chainFile("napper"), func(e chain.Event) error {
		if e.Seq == uint64(suspendedLength) {
			resumedAt = e
			return errFound
		}
		return nil
	})).To(MatchError(errFound))
	g.Expect(resumedAt.Parent.String()).To(Equal(suspendedHead), "the resumed run's first event links to the head status had at suspend")
	g.Expect(resumedAt.Kind).To(Equal(chain.KindActorStart))

	// Suspended again, then resumed on another node: its new segment links
	// to the final head published at this suspend.
	h.setSuspend("napper", true)
	h.waitReason("napper", v1alpha1.ReasonStopped, 20*time.Second)
	final := h.get("napper").Status.Chain
	rep, err = chain.VerifyFile(h.chainFile("napper"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(final.Head).To(Equal(rep.Head.String()))
	h.assign("napper", "", 2)
	g.Eventually(h.actor).WithArguments("napper").WithTimeout(10 * time.Second).Should(HaveField("State", "absent"))

	other := s.startHost(t)
	h.setSuspend("napper", false)
	h.assign("napper", other.pod, 3)
	h.waitReason("napper", v1alpha1.ReasonRunning, 20*time.Second)
	there := filepath.Join(other.dataDir, h.ns, "napper", h.get("napper").Status.ActorID, chain.FileName)
	first := firstEvent(t, there)
	g.Expect(first.Kind).To(Equal(chain.KindSegmentStart))
	g.Expect(first.Parent.String()).To(Equal(final.Head), "no tail of the chain is orphaned")
	g.Expect(first.Seq).To(Equal(uint64(final.Length)))
}

// testSuspendBeforeStart: an actor suspended before it ever ran here (it
// waits for its env) is reported Stopped with the chain on disk; one
// resumed before the controller let go runs again on the same epoch.
func (s *suite) testSuspendBeforeStart(t *testing.T) {
	g := NewWithT(t)
	h := s.startHost(t)
	h.create("waiter", v1alpha1.ActorSpec{
		Component: *h.wasmConfigMap("waiter-wasm", testdata(t, "ok.wasm")),
		Env:       []v1alpha1.EnvVar{fromSecret("TOKEN", "absent", "token")},
	})
	h.assign("waiter", h.pod, 1)
	h.waitReason("waiter", v1alpha1.ReasonEnvSourceMissing, 20*time.Second)
	h.setSuspend("waiter", true)
	c := h.waitReason("waiter", v1alpha1.ReasonStopped, 20*time.Second)
	g.Expect(c.Message).To(HavePrefix("the Actor was suspended: its host stopped it"))
	g.Expect(h.get("waiter").Status.Chain).To(BeNil(), "it never ran: no head")

	// Resumed while still assigned here (the controller had not let go
	// yet): the host runs the new generation itself, on the same epoch.
	g.Expect(h.c.Create(h.ctx(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "absent"},
		StringData: map[string]string{"token": "tok"}})).To(Succeed())
	h.setSuspend("waiter", false)
	h.waitReason("waiter", v1alpha1.ReasonRunning, 20*time.Second)
	a := h.get("waiter")
	g.Expect(a.Status.Epoch).To(BeEquivalentTo(1))
	g.Expect(h.ready("waiter").ObservedGeneration).To(Equal(a.Generation))
}
