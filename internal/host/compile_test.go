package host

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/testutil"
)

// testSlowCompile: with one compile slot, an actor whose module takes long
// to compile (it passes every structural bound: 100 functions of 4,000
// blocks) delays neither another actor's start with a module compiled
// before nor the host's Lease renewal.
func (s *suite) testSlowCompile(t *testing.T) {
	g := NewWithT(t)
	h := s.startHost(t, func(c *Config) { c.MaxConcurrentCompiles = 1 })
	ok := h.wasmConfigMap("ok", testdata(t, "ok.wasm"))
	h.create("warm-a", v1alpha1.ActorSpec{Component: *ok})
	h.assign("warm-a", h.pod, 1)
	h.waitReason("warm-a", v1alpha1.ReasonRunning, 60*time.Second)

	h.create("slow", v1alpha1.ActorSpec{Component: *s.urlSource(testutil.FuncsModule(testutil.SequentialBlocks(4000), 0, 100))})
	h.assign("slow", h.pod, 1)
	g.Eventually(h.host.engine.Compiling).WithTimeout(60 * time.Second).WithPolling(10 * time.Millisecond).Should(Equal(1))
	lease := func() time.Time {
		var l coordinationv1.Lease
		g.Expect(h.c.Get(h.ctx(), types.NamespacedName{Namespace: h.ns, Name: h.pod}, &l)).To(Succeed())
		return l.Spec.RenewTime.Time
	}
	renewed := lease()

	h.create("warm-b", v1alpha1.ActorSpec{Component: *ok})
	h.assign("warm-b", h.pod, 1)
	h.waitReason("warm-b", v1alpha1.ReasonRunning, 60*time.Second)
	g.Eventually(lease).WithTimeout(30 * time.Second).Should(BeTemporally(">", renewed))
	// All of that while the slow module was still compiling: otherwise the
	// test proved nothing.
	g.Expect(h.host.engine.Compiling()).To(Equal(1), "the slow compile ended before warm-b ran and the Lease was renewed")
	g.Expect(h.ready("slow").Reason).To(Equal(v1alpha1.ReasonStarting))
}
