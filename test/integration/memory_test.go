package integration

import (
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/host"
)

// testMemory: a host with a memory limit runs the actors its budget holds
// and no more, and the manager and the host agree on it through the
// host's Lease. Three actors of 1 GiB (declared, mapped, never touched)
// on a host whose actors may take 2.5 GiB: two run; the third, placed
// before the host's Lease said how much an actor takes there, is refused
// by the host and waits Pending with reason InsufficientMemory; once one
// of the two is deleted, its memory comes back and the third runs.
func (s *suite) testMemory(t *testing.T) {
	const gib = 1 << 30
	c := s.newCluster(t, clusterOptions{})
	g := c.g()
	c.startHost("host", func(cfg *host.Config) { cfg.MemoryLimit, cfg.MemoryReserve = 2*gib+gib/2+64<<20, 64<<20 })
	src := c.componentConfigMap("huge", testdata(t, "huge.wasm"), false)
	names := []string{"huge-0", "huge-1", "huge-2"}
	for _, n := range names {
		c.create(n, v1alpha1.ActorSpec{Component: *src, Limits: v1alpha1.Limits{MaxMemoryPages: 20000}})
	}
	var running, waiting []string
	g.Eventually(func(g Gomega) {
		running, waiting = nil, nil
		var list v1alpha1.ActorList
		g.Expect(c.c.List(c.ctx(), &list, client.InNamespace(c.ns))).To(Succeed())
		for i := range list.Items {
			a := &list.Items[i]
			switch {
			case readyNow(a):
				running = append(running, a.Name)
			case a.Status.Phase == v1alpha1.PhasePending:
				sched := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionScheduled)
				g.Expect(sched).NotTo(BeNil())
				g.Expect(sched.Reason).To(Equal(v1alpha1.ReasonInsufficientMemory), describe(a))
				g.Expect(sched.Message).To(ContainSubstring("insufficient memory"))
				waiting = append(waiting, a.Name)
			}
		}
		g.Expect(running).To(HaveLen(2))
		g.Expect(waiting).To(HaveLen(1))
	}).WithTimeout(slow).Should(Succeed())
	g.Expect(c.eventNotes(waiting[0])).To(ContainElement(ContainSubstring("memory")), "the wait is told")
	t.Logf("running %v, waiting %v: %v", running, waiting, c.eventNotes(waiting[0]))
	for _, n := range running {
		g.Expect(c.get(n).Status.Restarts).To(BeZero(), fmt.Sprintf("%s: a refusal elsewhere is no failure", n))
	}

	g.Expect(c.c.Delete(c.ctx(), c.get(running[0]))).To(Succeed())
	c.waitReady(waiting[0], slow)
	g.Expect(c.get(waiting[0]).Status.Restarts).To(BeZero(), "a refused start is no failure")
}
