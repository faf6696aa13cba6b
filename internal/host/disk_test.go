package host

import (
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/diskbudget"
	"github.com/troupe-dev/troupe/internal/testutil"
)

// testDiskPressure: below the free-space watermark of its data directory
// the host starts no actor (Ready=False, reason DiskPressure, an Event,
// phase unchanged) and starts it once space returns; a running actor's
// next append fails it with DiskPressure, not only new starts.
func (s *suite) testDiskPressure(t *testing.T) {
	g := NewWithT(t)
	var free atomic.Uint64
	free.Store(512 << 20)
	h := s.startHost(t, func(c *Config) {
		c.Disk = diskbudget.NodeLimits{MinFreeBytes: 1 << 30, MinFreePercent: -1}
		c.DiskPollInterval = 20 * time.Millisecond
		c.FreeSpace = func(string) (diskbudget.Space, error) {
			return diskbudget.Space{Free: free.Load(), Total: 100 << 30}, nil
		}
	})
	chatty := *h.s.urlSource(testutil.BuildActor(t, "internal/host/testdata/chatty"))
	h.create("pressed", v1alpha1.ActorSpec{Component: chatty, TickInterval: &metav1.Duration{Duration: 100 * time.Millisecond},
		Env: []v1alpha1.EnvVar{literal("CHATTER", "1")}})
	h.assign("pressed", h.pod, 1)
	c := h.waitReason("pressed", v1alpha1.ReasonDiskPressure, 60*time.Second)
	g.Expect(c.Message).To(ContainSubstring("waiting for free space to start: the node's data directory " + h.dataDir + " has 512.0 MiB free"))
	g.Expect(c.Message).To(ContainSubstring("below the host's watermark of 1.0 GiB"))
	g.Expect(h.get("pressed").Status.Phase).NotTo(Equal(v1alpha1.PhaseFailed))
	g.Eventually(func() []string { return h.events("pressed") }).Should(ContainElement(ContainSubstring(v1alpha1.EventDiskPressure + ": waiting for free space")))
	_, err := h.chain("pressed")
	g.Expect(err).To(HaveOccurred(), "a chain was written under disk pressure")

	// Space returns: it starts.
	free.Store(50 << 30)
	h.waitReason("pressed", v1alpha1.ReasonRunning, 60*time.Second)
	g.Eventually(func() int64 { return h.get("pressed").Status.Chain.Length }, 20*time.Second).Should(BeNumerically(">", 6))

	// Space runs out again: the running actor's next append fails it.
	free.Store(100 << 20)
	c = h.waitReason("pressed", v1alpha1.ReasonDiskPressure, 60*time.Second)
	a := h.get("pressed")
	g.Expect(a.Status.Phase).To(Equal(v1alpha1.PhaseFailed))
	g.Expect(c.Message).To(ContainSubstring("has 100.0 MiB free"))
	g.Expect(a.Status.LastError).To(ContainSubstring("below the host's watermark"))
	events, err := h.chain("pressed")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(events[len(events)-1].Data)).To(ContainSubstring(`"reason":"DiskPressure"`))
}
