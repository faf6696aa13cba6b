package controllers

import (
	"context"
	"fmt"
	"strconv"
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

const mib = 1 << 20

// declareMemory writes a host's memory figures into its Lease, as the host
// does when it renews: capacity, used by covered actors, per actor.
func (f *fakeHost) declareMemory(capacity, used uint64, covered int, perActor uint64) {
	f.h.t.Helper()
	key := types.NamespacedName{Namespace: f.h.ns, Name: f.name}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var l coordinationv1.Lease
		if err := f.h.c.Get(context.Background(), key, &l); err != nil {
			return err
		}
		l.Annotations[v1alpha1.MemoryCapacityAnnotation] = strconv.FormatUint(capacity, 10)
		l.Annotations[v1alpha1.MemoryUsedAnnotation] = strconv.FormatUint(used, 10)
		l.Annotations[v1alpha1.MemoryActorsAnnotation] = strconv.Itoa(covered)
		l.Annotations[v1alpha1.MemoryPerActorAnnotation] = strconv.FormatUint(perActor, 10)
		now := metav1.NewMicroTime(time.Now())
		l.Spec.RenewTime = &now
		return f.h.c.Update(context.Background(), &l)
	})
	if err != nil {
		f.h.t.Fatalf("declaring the memory of %s: %v", f.name, err)
	}
}

// testMemory: placement counts memory as well as actors. A host with room
// for five actors of 4 MiB gets five of a burst of seven, however fast they
// come (the ledger counts the ones its Lease does not cover yet); the other
// two wait Pending with reason InsufficientMemory, and are placed once the
// host's Lease shows room again. A host that refuses a start for lack of
// memory has its actor taken off and placed again: elsewhere when another
// host has room, else Pending with the reason, until the host has room.
func testMemory(t *testing.T, env *envtestutil.Env) {
	// No retry within the test: what places a waiting actor is a Lease
	// that shows room.
	h := newHarness(t, env, harnessOptions{tune: func(r *ActorReconciler) { r.FullRetry = time.Hour }})
	host := h.host("host-m", h.node("m", nil), 100)
	host.declareMemory(20*mib, 0, 0, 4*mib)
	// The manager must have seen the figures before the burst.
	h.g.Eventually(func(g Gomega) {
		hosts, err := hostLister{client: h.r.Client, namespace: h.ns}.list(h.ctx, nil)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(hosts).To(HaveLen(1))
		g.Expect(hosts[0].Memory.Capacity).To(BeEquivalentTo(20 * mib))
	}).Should(Succeed())

	const n = 7
	for i := range n {
		h.actor(fmt.Sprintf("mem-%d", i))
	}
	var placed, waiting []string
	h.g.Eventually(func(g Gomega) {
		placed, waiting = nil, nil
		for i := range n {
			a, err := h.get(fmt.Sprintf("mem-%d", i))
			g.Expect(err).NotTo(HaveOccurred())
			if a.Status.HostPod != "" {
				placed = append(placed, a.Name)
				continue
			}
			sched := condition(a, v1alpha1.ConditionScheduled)
			g.Expect(sched.Reason).To(Equal(v1alpha1.ReasonInsufficientMemory), "%s: %s", a.Name, sched.Message)
			g.Expect(sched.Message).To(ContainSubstring("0/1 hosts available: 1 insufficient memory (host host-m has 0 B of memory free for actors, an actor takes 4.0 MiB there)"))
			g.Expect(condition(a, v1alpha1.ConditionReady).Reason).To(Equal(v1alpha1.ReasonInsufficientMemory))
			g.Expect(a.Status.Phase).To(Equal(v1alpha1.PhasePending))
			waiting = append(waiting, a.Name)
		}
		g.Expect(placed).To(HaveLen(5))
		g.Expect(waiting).To(HaveLen(2))
	}).Should(Succeed())
	h.expectEvent(waiting[0], v1alpha1.EventNoHost, "insufficient memory")
	// They stay waiting while the host's renewals say it is full.
	host.declareMemory(20*mib, 20*mib, 5, 4*mib)
	host.declareMemory(20*mib, 19*mib, 5, 4*mib)
	h.g.Consistently(func(g Gomega) {
		for _, name := range waiting {
			a, err := h.get(name)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(a.Status.HostPod).To(BeEmpty(), "%s placed on a full host", name)
		}
	}).WithTimeout(2 * time.Second).Should(Succeed())

	// Two actors go; the host's Lease shows their memory free: the two
	// waiting ones are placed.
	for _, name := range placed[:2] {
		a, err := h.get(name)
		h.g.Expect(err).NotTo(HaveOccurred())
		h.g.Expect(h.c.Delete(h.ctx, a)).To(Succeed())
		h.report(name, "host-m", a.Status.Epoch, stoppedAndFlushed)
	}
	for _, name := range placed[:2] {
		h.g.Eventually(func() bool { _, err := h.get(name); return isNotFound(err) }).Should(BeTrue())
	}
	host.declareMemory(20*mib, 12*mib, 3, 4*mib)
	for _, name := range waiting {
		h.placed(name)
	}

	// The host refuses one of them after all (its Lease was stale: the
	// others took more than it expected), and renews its Lease at once
	// with what it holds: the actor is taken off and, with no other host,
	// waits with the host's reason.
	refused := waiting[0]
	a := h.placed(refused)
	host.declareMemory(20*mib, 19*mib, 4, 4*mib)
	h.report(refused, "host-m", a.Status.Epoch, func(a *v1alpha1.Actor) {
		setHostReady(a, metav1.ConditionFalse, v1alpha1.ReasonInsufficientMemory,
			"starting it would pass the host's memory budget: it takes 4.0 MiB, 1.0 MiB of 20.0 MiB is free")
	})
	h.eventually(refused, func(g Gomega, x *v1alpha1.Actor) {
		g.Expect(x.Status.HostPod).To(BeEmpty())
		g.Expect(x.Status.Phase).To(Equal(v1alpha1.PhasePending))
		sched := condition(x, v1alpha1.ConditionScheduled)
		g.Expect(sched.Reason).To(Equal(v1alpha1.ReasonInsufficientMemory))
		// "host host-m refused to start it" at first, then what the
		// host's Lease says: the condition follows every look.
		g.Expect(sched.Message).To(ContainSubstring("1 insufficient memory (host host-m"))
		g.Expect(x.Status.Restarts).To(BeEquivalentTo(0), "a refusal is no failure")
	})
	h.expectEvent(refused, v1alpha1.EventNoHost, "host host-m can't keep the actor (it refused to start it: starting it would pass the host's memory budget")

	// Another host with room takes it at its next look.
	other := h.host("host-o", h.node("o", nil), 100)
	other.declareMemory(100*mib, 0, 0, 4*mib)
	h.eventually(refused, func(g Gomega, x *v1alpha1.Actor) {
		g.Expect(x.Status.HostPod).To(Equal("host-o"))
		g.Expect(x.Status.Epoch).To(BeNumerically(">", a.Status.Epoch))
	})
}
