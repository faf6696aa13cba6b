package host

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/chain"
)

func testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHost runs hosts in-process against a real API server and etcd,
// playing the controller by writing assignments itself.
func TestHost(t *testing.T) {
	s := newSuite(t)
	t.Run("ApplyBecomesReady", s.testApplyBecomesReady)
	t.Run("OCIImageTagResolvedToDigest", s.testOCIImage)
	t.Run("URLComponent", s.testURLComponent)
	t.Run("JavaScriptComponentFromOCI", s.testJSComponentFromOCI)
	t.Run("BadComponentsFail", s.testBadComponents)
	t.Run("SlowCompileDelaysNoOne", s.testSlowCompile)
	t.Run("ComponentSourceAppears", s.testComponentSourceAppears)
	t.Run("EventNotesFitTheAPI", s.testEventNotesFitTheAPI)
	t.Run("TickCallsCounted", s.testTickCalls)
	t.Run("UnreadableRunRecordRefused", s.testUnreadableRunRecord)
	t.Run("ConfigMapEditReachesRunningActor", s.testFeatureFlags)
	t.Run("SecretNeverLeaks", s.testSecretNeverLeaks)
	t.Run("MissingRequiredEnvSource", s.testMissingEnvSource)
	t.Run("SystemInfoAndActorMetrics", s.testSystemInfoAndMetrics)
	t.Run("DeletionStopsAndFlushes", s.testDeletion)
	t.Run("SuspendPublishesFinalHeadAndResumeLinksToIt", s.testSuspend)
	t.Run("SuspendBeforeStartAndEarlyResume", s.testSuspendBeforeStart)
	t.Run("AssignmentMovesAway", s.testMovedAway)
	t.Run("RestartsOnEpochAndSpecChange", s.testRestarts)
	t.Run("NewSegmentLinksToStatusHead", s.testNewSegment)
	t.Run("StatusWritesAreBounded", s.testStatusRate)
	t.Run("ChattyActorStatusBounded", s.testChattyActor)
	t.Run("StatusBoundedUnderMessageLoad", s.testStatusUnderMessageLoad)
	t.Run("MessageMetrics", s.testMessageMetrics)
	t.Run("CrossNamespacePolicy", s.testCrossNamespacePolicy)
	t.Run("DiskPressure", s.testDiskPressure)
	t.Run("ShutdownPublishesHeadsAndDeletesLease", s.testShutdown)
	t.Run("ChainEndpoint", s.testChainEndpoint)
	t.Run("RBACLeastPrivilege", s.testRBAC)
	t.Run("MemoryBudget", s.testMemoryBudget)
	t.Run("ConfinedToNamespaces", s.testConfinedToNamespaces)
	t.Run("RestoreFromArchive", s.testRestore)
}

func (s *suite) testApplyBecomesReady(t *testing.T) {
	g := NewWithT(t)
	h := s.startHost(t)
	begin := time.Now()
	c := h.run("ok", h.okSpec("ok"), 20*time.Second)
	t.Logf("assignment to Ready=True in %s", time.Since(begin).Round(time.Millisecond))
	g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(c.Message).To(ContainSubstring("running module sha256:"))
	a := h.get("ok")
	g.Expect(a.Status.Phase).To(Equal(v1alpha1.PhaseRunning))
	g.Expect(c.ObservedGeneration).To(Equal(a.Generation))
	// The controller's fields are untouched.
	g.Expect(a.Status.HostPod).To(Equal(h.pod))
	g.Expect(a.Status.NodeName).To(Equal(h.node))
	g.Expect(a.Status.Epoch).To(Equal(int64(1)))

	// The head in status is the head of the chain on the node.
	g.Expect(a.Status.Chain).NotTo(BeNil())
	rep, err := chain.VerifyFile(h.chainFile("ok"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rep.OK()).To(BeTrue())
	g.Expect(a.Status.Chain.Head).To(Equal(rep.Head.String()))
	g.Expect(a.Status.Chain.HeadShort).To(Equal(rep.Head.String()[:12]))
	g.Expect(a.Status.Chain.Length).To(Equal(int64(rep.Length)))
	// ... and the chain endpoint serves that chain.
	events, err := h.chain("ok")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(events).To(HaveLen(int(rep.Length)))
	g.Expect(events[len(events)-1].Hash.String()).To(Equal(a.Status.Chain.Head))

	// The Lease says who and where the host is.
	var l coordinationv1.Lease
	g.Expect(h.c.Get(h.ctx(), types.NamespacedName{Namespace: h.ns, Name: h.pod}, &l)).To(Succeed())
	g.Expect(l.Labels).To(HaveKeyWithValue(v1alpha1.HostLeaseLabel, "true"))
	g.Expect(l.Annotations).To(HaveKeyWithValue(v1alpha1.NodeAnnotation, h.node))
	g.Expect(l.Annotations).To(HaveKeyWithValue(v1alpha1.CapacityAnnotation, "1000"))
	g.Expect(*l.Spec.HolderIdentity).To(Equal(h.pod))
	g.Expect(*l.Spec.LeaseDurationSeconds).To(Equal(int32(3)))
	// The pod owns it, so the Lease goes with the pod when the host can't
	// delete it (helm uninstall removes the host's RBAC while it stops).
	g.Expect(l.OwnerReferences).To(Equal([]metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: h.pod, UID: types.UID("uid-" + h.pod)}}))
	renewed := l.Spec.RenewTime.Time
	g.Eventually(func() time.Time {
		_ = h.c.Get(h.ctx(), types.NamespacedName{Namespace: h.ns, Name: h.pod}, &l)
		return l.Spec.RenewTime.Time
	}).WithTimeout(5 * time.Second).Should(BeTemporally(">", renewed))

	// Probes and metrics.
	g.Eventually(func() int {
		resp, err := http.Get(h.base + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}).WithTimeout(10 * time.Second).Should(Equal(http.StatusOK))
	m := h.metrics()
	g.Expect(m).To(ContainSubstring("troupe_host_actors_running 1"))
	g.Expect(m).To(ContainSubstring(`troupe_host_actor_starts_total{result="ok"} 1`))
	g.Expect(m).To(ContainSubstring(`troupe_host_calls_total{export="init",result="ok"} 1`))
	g.Expect(m).To(ContainSubstring("troupe_host_actor_start_seconds_count 1"))
	g.Eventually(h.events).WithArguments("ok").Should(ContainElement(ContainSubstring("Started: running module sha256:")))
	// A second actor on the warm host (cache synced, module compiled).
	begin = time.Now()
	h.run("ok2", h.okSpec("ok2"), 20*time.Second)
	t.Logf("warm host: create and assignment to Ready=True in %s", time.Since(begin).Round(time.Millisecond))
}
