package controllers

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/envtestutil"
)

// TestActorController runs the reconciler in a manager against a real
// kube-apiserver and etcd; each subtest has a manager and namespace of its
// own, and plays the host pods itself: Leases it renews (or stops
// renewing), and status written as a host writes it.
func TestActorController(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	env := envtestutil.Start(t)
	t.Run("PlacesAndWaitsForReady", func(t *testing.T) { testPlacesAndWaitsForReady(t, env) })
	t.Run("Balances50ActorsOverTwoHosts", func(t *testing.T) { testBalances(t, env) })
	t.Run("MovesActorsOffDeadHosts", func(t *testing.T) { testMoves(t, env) })
	t.Run("RespectsNodeSelectorAndTaints", func(t *testing.T) { testNodeSelectorAndTaints(t, env) })
	t.Run("PlacesOnlyOnKnownProtocolVersions", func(t *testing.T) { testProtocolVersions(t, env) })
	t.Run("PlacesOnlyOnHostsOfTheActorsNamespace", func(t *testing.T) { testNamespaces(t, env) })
	t.Run("SuspendAndResume", func(t *testing.T) { testSuspend(t, env) })
	t.Run("RestartsWithBackoff", func(t *testing.T) { testRestarts(t, env) })
	t.Run("DeleteWaitsForStoppedReport", func(t *testing.T) { testDelete(t, env) })
	t.Run("DeleteAndSuspendGiveUpAfterFlushTimeout", func(t *testing.T) { testFlushTimeout(t, env) })
	t.Run("RunsWithTheGeneratedRBAC", func(t *testing.T) { testRBAC(t, env) })
	t.Run("OneEventPerFact", func(t *testing.T) { testOneEventPerFact(t, env) })
	t.Run("NoHostGrace", func(t *testing.T) { testNoHostGrace(t, env) })
	t.Run("EventNotesFitTheAPIServer", func(t *testing.T) { testEventNotesOnTheAPIServer(t, env) })
	t.Run("InvalidSpecIsNotRestarted", func(t *testing.T) { testInvalidSpecNotRestarted(t, env) })
	t.Run("MissingComponentSourceWaits", func(t *testing.T) { testComponentSourceMissing(t, env) })
	t.Run("PlacesByMemory", func(t *testing.T) { testMemory(t, env) })
	t.Run("ArchiveRetention", func(t *testing.T) { testArchiveRetention(t, env) })
	t.Run("ArchiveRetentionZero", func(t *testing.T) { testArchiveRetentionZero(t, env) })
}

func testPlacesAndWaitsForReady(t *testing.T, env *envtestutil.Env) {
	h := newHarness(t, env, harnessOptions{})
	node := h.node("n1", nil)
	h.host("host-1", node, 10)
	h.actor("hello")

	a := h.placed("hello")
	g := NewWithT(t)
	g.Expect(a.Status.HostPod).To(Equal("host-1"))
	g.Expect(a.Status.NodeName).To(Equal(node))
	g.Expect(a.Status.Epoch).To(BeEquivalentTo(1))
	g.Expect(a.Finalizers).To(ContainElement(v1alpha1.ChainFlushFinalizer))
	_, err := uuid.Parse(a.Status.ActorID)
	g.Expect(err).NotTo(HaveOccurred(), "actorID %q", a.Status.ActorID)
	sched := condition(a, v1alpha1.ConditionScheduled)
	g.Expect(sched.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(sched.Reason).To(Equal(v1alpha1.ReasonAssigned))
	g.Expect(sched.ObservedGeneration).To(Equal(a.Generation))
	g.Expect(condition(a, v1alpha1.ConditionReady).Reason).To(Equal(v1alpha1.ReasonStarting))
	g.Expect(a.Status.ObservedGeneration).To(Equal(a.Generation))
	h.expectEvent("hello", v1alpha1.EventPlaced, "host-1", "epoch 1")

	// kubectl wait works on the Ready condition: it times out while the
	// host has not started the actor, and returns once it reports Ready.
	kubectl := kubectlFor(t, env)
	if out, err := kubectl("wait", "-n", h.ns, "--for=condition=Ready", "actor/hello", "--timeout=1s"); err == nil {
		t.Fatalf("kubectl wait returned before the host reported Ready: %s", out)
	}
	h.report("hello", "host-1", 1, running)
	if out, err := kubectl("wait", "-n", h.ns, "--for=condition=Ready", "actor/hello", "--timeout=30s"); err != nil {
		t.Fatalf("kubectl wait: %v: %s", err, out)
	}

	// A spec change is the host's to apply: the assignment stays, the
	// controller's view of the generation follows.
	h.update("hello", func(a *v1alpha1.Actor) { a.Spec.Description = "says hello" })
	h.eventually("hello", func(g Gomega, b *v1alpha1.Actor) {
		g.Expect(b.Generation).To(BeEquivalentTo(2))
		g.Expect(b.Status.ObservedGeneration).To(BeEquivalentTo(2))
		g.Expect(condition(b, v1alpha1.ConditionScheduled).ObservedGeneration).To(BeEquivalentTo(2))
		g.Expect(b.Status.Epoch).To(BeEquivalentTo(1))
		g.Expect(b.Status.ActorID).To(Equal(a.Status.ActorID))
		g.Expect(b.Status.Phase).To(Equal(v1alpha1.PhaseRunning))
	})
}

func testBalances(t *testing.T, env *envtestutil.Env) {
	h := newHarness(t, env, harnessOptions{})
	h.host("host-a", h.node("a", nil), 1000)
	h.host("host-b", h.node("b", nil), 1000)

	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { h.actor(fmt.Sprintf("actor-%02d", i)) })
	}
	wg.Wait()

	h.g.Eventually(func(g Gomega) {
		load := map[string]int{}
		for i := range n {
			a, err := h.get(fmt.Sprintf("actor-%02d", i))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(a.Status.HostPod).NotTo(BeEmpty(), "%s unplaced", a.Name)
			g.Expect(a.Labels[v1alpha1.AssignedHostLabel]).To(Equal(a.Status.HostPod))
			// A second placement from a stale read would have bumped it.
			g.Expect(a.Status.Epoch).To(BeEquivalentTo(1), "%s placed twice", a.Name)
			load[a.Status.HostPod]++
		}
		g.Expect(load["host-a"] + load["host-b"]).To(Equal(n))
		g.Expect(load["host-a"]-load["host-b"]).To(BeNumerically("~", 0, 1), "loads %v", load)
	}).Should(Succeed())
}

func testMoves(t *testing.T, env *envtestutil.Env) {
	h := newHarness(t, env, harnessOptions{})
	a := h.host("host-a", h.node("a", nil), 100)
	b := h.host("host-b", h.node("b", nil), 100)
	names := []string{"m0", "m1", "m2", "m3"}
	for _, n := range names {
		h.actor(n)
	}
	epochs := map[string]int64{}
	onA := map[string]bool{}
	for _, n := range names {
		x := h.placed(n)
		epochs[n] = x.Status.Epoch
		onA[n] = x.Status.HostPod == "host-a"
		h.report(n, x.Status.HostPod, x.Status.Epoch, running)
	}
	if len(onA) != 4 || count(onA) != 2 {
		t.Fatalf("want 2 of 4 actors on host-a, got %v", onA)
	}

	// host-a stops renewing: no event tells the controller, its lease
	// just runs out; its actors move to host-b with a new epoch.
	died := time.Now()
	a.die()
	expectAllOn(h, names, "host-b", func(g Gomega, x *v1alpha1.Actor) {
		want := epochs[x.Name]
		if onA[x.Name] {
			want++
			justMoved(g, x)
		} else {
			g.Expect(x.Status.Phase).To(Equal(v1alpha1.PhaseRunning), "%s stays put", x.Name)
		}
		g.Expect(x.Status.Epoch).To(Equal(want), "%s", x.Name)
	})
	t.Logf("actors moved %s after host-a's last renewal (lease %s)", time.Since(died).Round(10*time.Millisecond), testLease)
	for n, was := range onA {
		if was {
			h.expectEvent(n, v1alpha1.EventMoved, "from host host-a", "lease expired", "to host host-b")
		}
	}

	// A host that shuts down cleanly deletes its Lease: its actors move
	// at once.
	c := h.host("host-c", h.node("c", nil), 100)
	b.shutdown()
	expectAllOn(h, names, "host-c", justMoved)
	h.expectEvent("m0", v1alpha1.EventMoved, "from host host-b", "Lease is gone", "to host host-c")

	// With no live host left, actors wait; a new host takes them.
	c.shutdown()
	h.g.Eventually(func(g Gomega) {
		for _, n := range names {
			x, err := h.get(n)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(x.Status.HostPod).To(BeEmpty())
			g.Expect(x.Labels).NotTo(HaveKey(v1alpha1.AssignedHostLabel))
			g.Expect(x.Status.Phase).To(Equal(v1alpha1.PhasePending))
			c := condition(x, v1alpha1.ConditionScheduled)
			g.Expect(c.Reason).To(Equal(v1alpha1.ReasonNoHost))
			g.Expect(c.Message).To(Equal("0/1 hosts available: 1 lease expired"))
		}
	}).Should(Succeed())
	h.expectEvent("m1", v1alpha1.EventNoHost, "host host-c can't keep the actor (its Lease is gone); 0/1 hosts available: 1 lease expired")
	h.host("host-d", h.node("d", nil), 100)
	expectAllOn(h, names, "host-d", justMoved)
}

func count(m map[string]bool) int {
	n := 0
	for _, v := range m {
		if v {
			n++
		}
	}
	return n
}

// justMoved checks that a moved actor waits for its new host: the old
// host's Ready must not linger.
func justMoved(g Gomega, x *v1alpha1.Actor) {
	g.Expect(x.Status.Phase).To(Equal(v1alpha1.PhaseScheduled), "%s", x.Name)
	g.Expect(condition(x, v1alpha1.ConditionReady).Reason).To(Equal(v1alpha1.ReasonStarting), "%s", x.Name)
	g.Expect(condition(x, v1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionFalse), "%s", x.Name)
}

func expectAllOn(h *harness, names []string, host string, check func(Gomega, *v1alpha1.Actor)) {
	h.t.Helper()
	h.g.Eventually(func(g Gomega) {
		for _, n := range names {
			x, err := h.get(n)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(x.Status.HostPod).To(Equal(host), "%s", n)
			g.Expect(x.Labels[v1alpha1.AssignedHostLabel]).To(Equal(host), "%s", n)
			if check != nil {
				check(g, x)
			}
		}
	}).Should(Succeed())
}

func testNodeSelectorAndTaints(t *testing.T, env *envtestutil.Env) {
	h := newHarness(t, env, harnessOptions{})
	gpuNode := h.node("gpu", map[string]string{"accel": "gpu"})
	plainNode := h.node("plain", map[string]string{"pool": "general"})
	batchNode := h.node("batch", map[string]string{"pool": "batch"},
		corev1.Taint{Key: "dedicated", Value: "batch", Effect: corev1.TaintEffectNoSchedule})
	drainNode := h.node("drain", nil, corev1.Taint{Key: "draining", Effect: corev1.TaintEffectNoExecute})
	h.host("host-gpu", gpuNode, 100)
	h.host("host-plain", plainNode, 100)
	h.host("host-batch", batchNode, 100)
	h.host("host-drain", drainNode, 100)

	selector := func(kv ...string) func(*v1alpha1.Actor) {
		return func(a *v1alpha1.Actor) {
			a.Spec.NodeSelector = map[string]string{}
			for i := 0; i < len(kv); i += 2 {
				a.Spec.NodeSelector[kv[i]] = kv[i+1]
			}
		}
	}
	tolerateBatch := func(a *v1alpha1.Actor) {
		a.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "batch", Effect: corev1.TaintEffectNoSchedule}}
	}
	h.actor("gpu", selector("accel", "gpu"))
	h.actor("batch", selector("pool", "batch"), tolerateBatch)
	h.actor("batch-intolerant", selector("pool", "batch"))
	h.actor("nowhere", selector("zone", "mars"))
	var free []string
	for i := range 6 {
		free = append(free, fmt.Sprintf("free-%d", i))
		h.actor(free[i])
	}

	g := NewWithT(t)
	g.Expect(h.placed("gpu").Status.HostPod).To(Equal("host-gpu"))
	g.Expect(h.placed("batch").Status.HostPod).To(Equal("host-batch"))
	for _, n := range free {
		g.Expect(h.placed(n).Status.HostPod).To(BeElementOf("host-gpu", "host-plain"), "%s is on a tainted host", n)
	}
	expectNoHost := func(name, why string) {
		h.eventually(name, func(g Gomega, x *v1alpha1.Actor) {
			g.Expect(x.Status.HostPod).To(BeEmpty())
			g.Expect(x.Status.Phase).To(Equal(v1alpha1.PhasePending))
			c := condition(x, v1alpha1.ConditionScheduled)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(v1alpha1.ReasonNoHost))
			g.Expect(c.Message).To(ContainSubstring(why))
		})
	}
	expectNoHost("batch-intolerant", "1 untolerated taint, 3 node didn't match nodeSelector")
	expectNoHost("nowhere", "0/4 hosts available: 4 node didn't match nodeSelector")
	h.expectEvent("nowhere", v1alpha1.EventNoHost, "didn't match nodeSelector")

	// A node gaining the label wakes the waiting actor.
	h.g.Eventually(func() error {
		var n corev1.Node
		if err := h.c.Get(context.Background(), types.NamespacedName{Name: plainNode}, &n); err != nil {
			return err
		}
		n.Labels["zone"] = "mars"
		return h.c.Update(context.Background(), &n)
	}).Should(Succeed())
	g.Expect(h.placed("nowhere").Status.HostPod).To(Equal("host-plain"))

	// A spec change that tolerates the taint places it.
	h.update("batch-intolerant", tolerateBatch)
	g.Expect(h.placed("batch-intolerant").Status.HostPod).To(Equal("host-batch"))

	// A spec change the current host no longer fits moves the actor.
	before := h.placed("gpu")
	h.update("gpu", selector("zone", "mars"))
	h.eventually("gpu", func(g Gomega, x *v1alpha1.Actor) {
		g.Expect(x.Status.HostPod).To(Equal("host-plain"))
		g.Expect(x.Status.Epoch).To(Equal(before.Status.Epoch + 1))
	})
	h.expectEvent("gpu", v1alpha1.EventMoved, "from host host-gpu", "didn't match nodeSelector")
}

// finalHead is the head a host publishes when it stops an actor: not
// testHead, the head it published while the actor ran.
const finalHead = "9c0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d6"

func stoppedForSuspend(a *v1alpha1.Actor) {
	setHostReady(a, metav1.ConditionFalse, v1alpha1.ReasonStopped, "the Actor was suspended: its host stopped it and flushed its chain")
	now := metav1.Now()
	a.Status.Chain = &v1alpha1.ChainStatus{Head: finalHead, HeadShort: v1alpha1.ShortHead(finalHead), Length: 9, UpdatedAt: &now}
}

func testSuspend(t *testing.T, env *envtestutil.Env) {
	h := newHarness(t, env, harnessOptions{})
	h.host("host-1", h.node("n1", nil), 10)
	h.actor("sleepy")
	a := h.placed("sleepy")
	h.report("sleepy", "host-1", a.Status.Epoch, running)

	// Suspending keeps the assignment until the host has stopped the actor
	// and published its final head: the host may only write while it is
	// assigned.
	h.update("sleepy", func(a *v1alpha1.Actor) { a.Spec.Suspend = true })
	h.g.Eventually(func(g Gomega) {
		cached := &v1alpha1.Actor{}
		g.Expect(h.r.Client.Get(h.ctx, types.NamespacedName{Namespace: h.ns, Name: "sleepy"}, cached)).To(Succeed())
		sched := condition(cached, v1alpha1.ConditionScheduled)
		g.Expect(sched.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(sched.Reason).To(Equal(v1alpha1.ReasonSuspending))
		g.Expect(sched.Message).To(ContainSubstring("waiting for host host-1"))
	}).Should(Succeed())
	h.expectEvent("sleepy", v1alpha1.EventSuspended, "stopping it on host host-1")
	// Another look changes nothing: still waiting, up to the flush timeout.
	res, err := h.r.Reconcile(h.ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: h.ns, Name: "sleepy"}})
	g := NewWithT(t)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.RequeueAfter).To(BeNumerically(">", time.Minute), "waits up to the flush timeout")
	x, err := h.get("sleepy")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(x.Status.HostPod).To(Equal("host-1"))
	g.Expect(x.Labels).To(HaveKeyWithValue(v1alpha1.AssignedHostLabel, "host-1"))
	g.Expect(x.Status.Phase).To(Equal(v1alpha1.PhaseRunning))

	// The host stops it and reports Stopped with the final head: now it is
	// suspended, with that head.
	h.report("sleepy", "host-1", a.Status.Epoch, stoppedForSuspend)
	h.eventually("sleepy", func(g Gomega, x *v1alpha1.Actor) {
		g.Expect(x.Status.Phase).To(Equal(v1alpha1.PhaseSuspended))
		g.Expect(x.Status.HostPod).To(BeEmpty())
		g.Expect(x.Status.NodeName).To(BeEmpty())
		g.Expect(x.Labels).NotTo(HaveKey(v1alpha1.AssignedHostLabel))
		g.Expect(condition(x, v1alpha1.ConditionScheduled).Reason).To(Equal(v1alpha1.ReasonSuspended))
		ready := condition(x, v1alpha1.ConditionReady)
		g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(ready.Reason).To(Equal(v1alpha1.ReasonSuspended))
		g.Expect(x.Status.Chain).NotTo(BeNil())
		g.Expect(x.Status.Chain.Head).To(Equal(finalHead), "the head the host published at the stop")
		g.Expect(x.Status.Chain.Length).To(BeEquivalentTo(9))
		g.Expect(x.Status.Epoch).To(Equal(a.Status.Epoch))
		g.Expect(x.Status.ActorID).To(Equal(a.Status.ActorID))
		g.Expect(x.Finalizers).To(ContainElement(v1alpha1.ChainFlushFinalizer), "suspend is not delete")
	})
	h.expectEvent("sleepy", v1alpha1.EventSuspended, "host host-1 stopped the actor and published its final chain head", "length 9")

	// Resuming is a new assignment; the chain head stays the one the next
	// run links to.
	h.update("sleepy", func(a *v1alpha1.Actor) { a.Spec.Suspend = false })
	b := h.placed("sleepy")
	g.Expect(b.Status.Epoch).To(Equal(a.Status.Epoch+1), "resuming is a new assignment")
	g.Expect(b.Status.Chain.Head).To(Equal(finalHead))
	g.Expect(condition(b, v1alpha1.ConditionReady).Reason).To(Equal(v1alpha1.ReasonStarting))

	// Resumed while its host is still stopping it: the assignment stands
	// (the host runs the new generation itself).
	h.report("sleepy", "host-1", b.Status.Epoch, running)
	h.update("sleepy", func(a *v1alpha1.Actor) { a.Spec.Suspend = true })
	h.eventually("sleepy", func(g Gomega, x *v1alpha1.Actor) {
		g.Expect(condition(x, v1alpha1.ConditionScheduled).Reason).To(Equal(v1alpha1.ReasonSuspending))
	})
	h.update("sleepy", func(a *v1alpha1.Actor) { a.Spec.Suspend = false })
	h.eventually("sleepy", func(g Gomega, x *v1alpha1.Actor) {
		sched := condition(x, v1alpha1.ConditionScheduled)
		g.Expect(sched.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(sched.Reason).To(Equal(v1alpha1.ReasonAssigned))
		g.Expect(sched.ObservedGeneration).To(Equal(x.Generation))
		g.Expect(x.Status.HostPod).To(Equal("host-1"))
		g.Expect(x.Status.Epoch).To(Equal(b.Status.Epoch))
	})

	// Its host dies while it waits: no final head will come, so it is
	// suspended when the lease runs out, saying so.
	doomed := h.host("host-doomed", h.node("doomed", map[string]string{"doomed": "yes"}), 10)
	h.actor("stranded", func(a *v1alpha1.Actor) { a.Spec.NodeSelector = map[string]string{"doomed": "yes"} })
	st := h.placed("stranded")
	h.report("stranded", "host-doomed", st.Status.Epoch, running)
	h.update("stranded", func(a *v1alpha1.Actor) { a.Spec.Suspend = true })
	h.eventually("stranded", func(g Gomega, x *v1alpha1.Actor) {
		g.Expect(condition(x, v1alpha1.ConditionScheduled).Reason).To(Equal(v1alpha1.ReasonSuspending))
	})
	doomed.die()
	h.eventually("stranded", func(g Gomega, x *v1alpha1.Actor) {
		g.Expect(x.Status.Phase).To(Equal(v1alpha1.PhaseSuspended))
		g.Expect(x.Status.HostPod).To(BeEmpty())
		g.Expect(x.Labels).NotTo(HaveKey(v1alpha1.AssignedHostLabel))
		g.Expect(x.Status.Chain.Head).To(Equal(testHead), "the last head the host reported")
	})
	h.expectEvent("stranded", v1alpha1.EventSuspended, "host host-doomed is gone", "final chain head could not be published", "chain head 3f8a1c2b4d5e")

	// An actor created suspended is never placed.
	h.actor("born-asleep", func(a *v1alpha1.Actor) { a.Spec.Suspend = true })
	h.eventually("born-asleep", func(g Gomega, x *v1alpha1.Actor) {
		g.Expect(x.Status.Phase).To(Equal(v1alpha1.PhaseSuspended))
		g.Expect(x.Status.ActorID).NotTo(BeEmpty())
		g.Expect(x.Status.Epoch).To(BeZero())
	})
}

func testRestarts(t *testing.T, env *envtestutil.Env) {
	h := newHarness(t, env, harnessOptions{}) // backoff 1s, 2s, 4s, 8s
	h.host("host-1", h.node("n1", nil), 10)
	h.actor("crashy")
	h.actor("once", func(a *v1alpha1.Actor) { a.Spec.RestartPolicy = v1alpha1.RestartNever })
	h.actor("daemon", func(a *v1alpha1.Actor) { a.Spec.RestartPolicy = v1alpha1.RestartAlways })
	h.actor("done", func(a *v1alpha1.Actor) { a.Spec.RestartPolicy = v1alpha1.RestartOnFailure })
	for _, n := range []string{"crashy", "once", "daemon", "done"} {
		h.report(n, "host-1", h.placed(n).Status.Epoch, running)
	}

	// OnFailure: each failure restarts with a new epoch on the same host,
	// no sooner than the backoff (1s, then 2s) after the failure.
	restartAfter := func(epoch int64, wantRestarts int32, backoff time.Duration) {
		t.Helper()
		failedAt := time.Now()
		h.report("crashy", "host-1", epoch, failed(v1alpha1.ReasonTrapped, "wasm trap: unreachable"))
		// While it waits, status says until when.
		h.eventually("crashy", func(g Gomega, x *v1alpha1.Actor) {
			if x.Status.Epoch > epoch {
				return // already restarted: checked below
			}
			g.Expect(x.Status.NextRestartTime).NotTo(BeNil())
			g.Expect(x.Status.NextRestartTime.Time).To(BeTemporally(">=", failedAt.Add(backoff).Truncate(time.Second)))
			g.Expect(x.Status.NextRestartTime.Time).To(BeTemporally("<=", time.Now().Add(backoff+time.Second)))
		})
		var x *v1alpha1.Actor
		h.g.Eventually(func(g Gomega) {
			var err error
			x, err = h.get("crashy")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(x.Status.Epoch).To(Equal(epoch + 1))
		}).Should(Succeed())
		took := time.Since(failedAt)
		g := NewWithT(t)
		g.Expect(took).To(BeNumerically(">=", backoff), "restarted before its backoff")
		g.Expect(x.Status.Restarts).To(Equal(wantRestarts))
		g.Expect(x.Status.HostPod).To(Equal("host-1"))
		g.Expect(x.Labels[v1alpha1.AssignedHostLabel]).To(Equal("host-1"))
		g.Expect(x.Status.Phase).To(Equal(v1alpha1.PhaseScheduled))
		g.Expect(x.Status.LastRestartTime).NotTo(BeNil())
		g.Expect(x.Status.LastError).To(Equal("wasm trap: unreachable"), "the last error stays visible until it runs")
		g.Expect(x.Status.NextRestartTime).To(BeNil(), "no restart pending")
		g.Expect(condition(x, v1alpha1.ConditionReady).Reason).To(Equal(v1alpha1.ReasonStarting))
		t.Logf("restart %d came %s after the failure (backoff %s)", wantRestarts, took.Round(10*time.Millisecond), backoff)
	}
	restartAfter(1, 1, time.Second)
	// The host records the failure; the manager records what it does.
	h.expectEvent("crashy", v1alpha1.EventRestarting, "restart 1", "epoch 2", "after its backoff", "it had stopped: wasm trap: unreachable")
	h.report("crashy", "host-1", 2, running)
	restartAfter(2, 2, 2*time.Second)

	// While it waits, Ready says why and for how long.
	h.report("crashy", "host-1", 3, failed(v1alpha1.ReasonCallTimeout, "call ran past 5s"))
	h.eventually("crashy", func(g Gomega, x *v1alpha1.Actor) {
		c := condition(x, v1alpha1.ConditionReady)
		g.Expect(c.Reason).To(Equal(v1alpha1.ReasonBackOff))
		g.Expect(c.Message).To(ContainSubstring("CallTimeout: call ran past 5s; restarting in 4s"))
	})

	// Never: a failure is final; the host's report stands.
	h.report("once", "host-1", 1, failed(v1alpha1.ReasonInitFailed, "init: bad state"))
	h.settled("once")
	x, err := h.get("once")
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	NewWithT(t).Expect(x.Status.Epoch).To(BeEquivalentTo(1))
	NewWithT(t).Expect(x.Status.Phase).To(Equal(v1alpha1.PhaseFailed))
	NewWithT(t).Expect(x.Status.NextRestartTime).To(BeNil())
	NewWithT(t).Expect(condition(x, v1alpha1.ConditionReady).Reason).To(Equal(v1alpha1.ReasonInitFailed))
	// ...until its spec changes: a new spec is a new start. Its live host
	// restarts it itself; when the new spec sends it elsewhere, the
	// controller restarts it there at once.
	h.host("host-2", h.node("n2", map[string]string{"tier": "2"}), 10)
	h.update("once", func(a *v1alpha1.Actor) { a.Spec.NodeSelector = map[string]string{"tier": "2"} })
	h.eventually("once", func(g Gomega, x *v1alpha1.Actor) {
		g.Expect(x.Status.HostPod).To(Equal("host-2"))
		g.Expect(x.Status.Epoch).To(BeEquivalentTo(2))
		g.Expect(x.Status.Restarts).To(BeEquivalentTo(1))
		g.Expect(x.Status.Phase).To(Equal(v1alpha1.PhaseScheduled))
	})
	h.expectEvent("once", v1alpha1.EventRestarting, "for spec generation 2", "host host-1 can't take it")

	// Always restarts an actor that called shutdown; OnFailure does not
	// (the Always restart, processed after it, shows the controller saw
	// both).
	h.report("done", "host-1", 1, succeeded)
	h.report("daemon", "host-1", 1, succeeded)
	h.eventually("daemon", func(g Gomega, x *v1alpha1.Actor) {
		g.Expect(x.Status.Epoch).To(BeEquivalentTo(2))
		g.Expect(x.Status.Restarts).To(BeEquivalentTo(1))
	})
	h.expectEvent("daemon", v1alpha1.EventRestarting, "restart 1")
	d, err := h.get("done")
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	NewWithT(t).Expect(d.Status.Phase).To(Equal(v1alpha1.PhaseSucceeded))
	NewWithT(t).Expect(d.Status.Epoch).To(BeEquivalentTo(1))
}

func testDelete(t *testing.T, env *envtestutil.Env) {
	h := newHarness(t, env, harnessOptions{})
	h.host("host-live", h.node("live", nil), 10)
	h.actor("keeper")
	a := h.placed("keeper")
	h.report("keeper", "host-live", a.Status.Epoch, running)

	g := NewWithT(t)
	g.Expect(h.c.Delete(context.Background(), a)).To(Succeed())
	// Run a reconcile of the deleted Actor and look: it must still be
	// there, finalizer and all, waiting for the host.
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: h.ns, Name: "keeper"}}
	h.g.Eventually(func(g Gomega) {
		cached := &v1alpha1.Actor{}
		g.Expect(h.r.Client.Get(h.ctx, req.NamespacedName, cached)).To(Succeed())
		g.Expect(cached.DeletionTimestamp).NotTo(BeNil())
	}).Should(Succeed())
	res, err := h.r.Reconcile(h.ctx, req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.RequeueAfter).To(BeNumerically(">", time.Minute), "waits up to the flush timeout")
	x, err := h.get("keeper")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(x.Finalizers).To(ContainElement(v1alpha1.ChainFlushFinalizer))

	// The host stops the actor, flushes the chain, reports Stopped: the
	// Actor goes.
	h.report("keeper", "host-live", a.Status.Epoch, stoppedAndFlushed)
	h.g.Eventually(func() error { _, err := h.get("keeper"); return err }).Should(Satisfy(isNotFound))
	h.expectEvent("keeper", v1alpha1.EventFinalizerRemoved, "host host-live stopped the actor and flushed its chain", "chain head 3f8a1c2b4d5e, length 9")

	// An actor on a dead host can't be flushed: it goes at once, saying so.
	dead := h.host("host-dead", h.node("dead", map[string]string{"doomed": "yes"}), 10)
	h.actor("orphan", func(a *v1alpha1.Actor) { a.Spec.NodeSelector = map[string]string{"doomed": "yes"} })
	o := h.placed("orphan")
	h.report("orphan", "host-dead", o.Status.Epoch, running)
	dead.die()
	h.eventually("orphan", func(g Gomega, x *v1alpha1.Actor) {
		g.Expect(x.Status.HostPod).To(BeEmpty())
	})
	// Unassigned now (no other host fits): nothing to flush.
	g.Expect(h.c.Delete(context.Background(), o)).To(Succeed())
	h.g.Eventually(func() error { _, err := h.get("orphan"); return err }).Should(Satisfy(isNotFound))
	h.expectEvent("orphan", v1alpha1.EventFinalizerRemoved, "not assigned to a host")

	// Deleted while assigned to a host that then dies: released when the
	// lease runs out, with a warning.
	doomed := h.host("host-doomed", h.node("doomed", map[string]string{"doomed": "again"}), 10)
	h.actor("stranded", func(a *v1alpha1.Actor) { a.Spec.NodeSelector = map[string]string{"doomed": "again"} })
	s := h.placed("stranded")
	h.report("stranded", "host-doomed", s.Status.Epoch, running)
	g.Expect(h.c.Delete(context.Background(), s)).To(Succeed())
	doomed.die()
	h.g.Eventually(func() error { _, err := h.get("stranded"); return err }).Should(Satisfy(isNotFound))
	h.expectEvent("stranded", v1alpha1.EventFinalizerRemoved, "host host-doomed is gone", "could not be flushed", "chain head 3f8a1c2b4d5e")
}

func testFlushTimeout(t *testing.T, env *envtestutil.Env) {
	h := newHarness(t, env, harnessOptions{tune: func(r *ActorReconciler) { r.FlushTimeout = 2 * time.Second }})
	h.host("host-mute", h.node("mute", nil), 10)
	h.actor("unanswered")
	a := h.placed("unanswered")
	h.report("unanswered", "host-mute", a.Status.Epoch, running)
	deleted := time.Now()
	NewWithT(t).Expect(h.c.Delete(context.Background(), a)).To(Succeed())
	h.g.Eventually(func() error { _, err := h.get("unanswered"); return err }).Should(Satisfy(isNotFound))
	NewWithT(t).Expect(time.Since(deleted)).To(BeNumerically(">=", time.Second), "released before the flush timeout")
	h.expectEvent("unanswered", v1alpha1.EventFinalizerRemoved, "did not report the actor Stopped within 2s")

	// Suspending waits no longer for a host that never answers.
	h.actor("drowsy")
	d := h.placed("drowsy")
	h.report("drowsy", "host-mute", d.Status.Epoch, running)
	suspended := time.Now()
	h.update("drowsy", func(a *v1alpha1.Actor) { a.Spec.Suspend = true })
	h.eventually("drowsy", func(g Gomega, x *v1alpha1.Actor) {
		g.Expect(x.Status.Phase).To(Equal(v1alpha1.PhaseSuspended))
		g.Expect(x.Status.HostPod).To(BeEmpty())
		g.Expect(x.Status.Chain.Head).To(Equal(testHead))
	})
	NewWithT(t).Expect(time.Since(suspended)).To(BeNumerically(">=", time.Second), "suspended before the flush timeout")
	h.expectEvent("drowsy", v1alpha1.EventSuspended, "host host-mute did not report the actor Stopped within 2s", "final chain head could not be published")
}

// kubectlFor runs the kubectl built with the control plane as its admin.
func kubectlFor(t *testing.T, env *envtestutil.Env) func(args ...string) (string, error) {
	t.Helper()
	bin := filepath.Join(env.Assets, "kubectl")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no kubectl beside the control plane (%v): build it with hack/setup-envtest.sh", err)
	}
	path := env.Kubeconfig(t)
	return func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", path}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
}
