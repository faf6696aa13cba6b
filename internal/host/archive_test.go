package host

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/objstore"
	"github.com/troupe-dev/troupe/internal/s3test"
)

// TestHostArchive runs hosts that archive their actors' chains into a
// real S3 server (versitygw).
func TestHostArchive(t *testing.T) {
	s := newSuite(t)
	t.Run("EventsReachTheArchiveAndLifecycleStepsUploadFirst", s.testArchiveLifecycle)
	t.Run("StoreDownDelaysArchivingAndSaysSo", s.testArchiveStoreDown)
	t.Run("LeftoversUploadedWhenTheNodeComesBack", s.testArchiveLeftovers)
	t.Run("DeletedActorsArchiveNotRecreated", s.testArchiveTombstone)
	t.Run("LocalTailBoundsTheNodesChain", s.testArchiveLocalTail)
}

// archiveRP is the tests' recovery point: short, so that they are quick.
const archiveRP = time.Second

func withArchive(st objstore.Store, rp time.Duration) hostOption {
	return func(c *Config) {
		c.Archive = &ArchiveConfig{Store: st, Where: "s3://test", RecoveryPoint: rp, FlushTimeout: 10 * time.Second}
	}
}

// tickerSpec runs internal/actorhost's ticking test actor, counting 10
// ticks a second.
func (h *harness) tickerSpec() v1alpha1.ActorSpec {
	h.t.Helper()
	wasm, err := os.ReadFile(filepath.Join("..", "actorhost", "testdata", "tick.wasm"))
	if err != nil {
		h.t.Fatal(err)
	}
	return v1alpha1.ActorSpec{Component: *h.s.urlSource(wasm), InitialState: "c" + strings.Repeat(" ", 15),
		TickInterval: &metav1.Duration{Duration: 100 * time.Millisecond}}
}

func archiveCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// archivedLength is the length of the actor's history in the archive.
func archivedLength(t testing.TB, st objstore.Store, id string) uint64 {
	h, err := archive.Resolve(archiveCtx(t), st, id)
	if err != nil || h.Tip() == nil {
		return 0
	}
	return h.Tip().Segment.Length
}

// archivedCond is the actor's Archived condition, or a placeholder.
func (h *harness) archivedCond(name string) metav1.Condition {
	if c := meta.FindStatusCondition(h.get(name).Status.Conditions, v1alpha1.ConditionArchived); c != nil {
		return *c
	}
	return metav1.Condition{Reason: "NoArchivedCondition"}
}

// expectArchiveEndsAtStatus checks that the whole archive verifies and ends
// at the head in the Actor's status, and that it restores the state saved
// on the node.
func (h *harness) expectArchiveEndsAtStatus(st objstore.Store, name string) {
	h.t.Helper()
	g := NewWithT(h.t)
	a := h.get(name)
	rep, err := archive.Verify(archiveCtx(h.t), st, a.Status.ActorID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rep.Head.String()).To(Equal(a.Status.Chain.Head), "the archive ends at the status head")
	g.Expect(int64(rep.Length)).To(Equal(a.Status.Chain.Length))
	local, err := chain.VerifyFile(h.chainFile(name))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(local.Head).To(Equal(rep.Head), "the archive ends where the chain on the node does")
}

func (s *suite) testArchiveLifecycle(t *testing.T) {
	g := NewWithT(t)
	srv := s3test.Start(t)
	st := srv.Bucket(t, "troupe")
	h := s.startHost(t, withArchive(st, archiveRP))

	for _, name := range []string{"suspended", "deleted", "survivor"} {
		a := h.create(name, h.tickerSpec())
		if name == "deleted" {
			a.Finalizers = []string{v1alpha1.ChainFlushFinalizer}
			g.Expect(h.c.Update(h.ctx(), a)).To(Succeed())
		}
		h.assign(name, h.pod, 1)
	}
	for _, name := range []string{"suspended", "deleted", "survivor"} {
		h.waitReason(name, v1alpha1.ReasonRunning, 60*time.Second)
	}
	// The name index knows the id before the actor ran.
	id := h.get("survivor").Status.ActorID
	entries, err := archive.LookupName(archiveCtx(t), st, h.ns, "survivor")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(entries).To(HaveLen(1))
	g.Expect(entries[0].ActorID).To(Equal(id))

	// A ticking actor's events reach the archive within the recovery
	// point (polled with a deadline the loaded machine can meet; the lag
	// itself is logged).
	g.Eventually(func() int64 { return h.get("survivor").Status.Chain.Length }).WithTimeout(20 * time.Second).Should(BeNumerically(">", 10))
	target := uint64(h.get("survivor").Status.Chain.Length)
	begin := time.Now()
	g.Eventually(func() uint64 { return archivedLength(t, st, id) }).WithTimeout(30 * time.Second).WithPolling(20 * time.Millisecond).
		Should(BeNumerically(">=", target))
	t.Logf("the status head reached the archive %s later (recovery point %s)", time.Since(begin).Round(time.Millisecond), archiveRP)
	g.Eventually(h.archivedCond).WithArguments("survivor").WithTimeout(20 * time.Second).Should(And(
		HaveField("Status", metav1.ConditionTrue), HaveField("Reason", v1alpha1.ReasonArchiveUpToDate)))
	g.Expect(h.metrics()).To(ContainSubstring(`troupe_host_archive_uploads_total{result="ok"}`))
	g.Expect(h.metrics()).To(ContainSubstring("troupe_host_archive_oldest_unarchived_event_age_seconds"))

	// Suspend: the host reports Stopped only once the archive holds the
	// whole chain.
	h.setSuspend("suspended", true)
	h.waitReason("suspended", v1alpha1.ReasonStopped, 30*time.Second)
	h.expectArchiveEndsAtStatus(st, "suspended")

	// Delete: the same, before the manager may release the finalizer.
	g.Expect(h.c.Delete(h.ctx(), h.get("deleted"))).To(Succeed())
	h.waitReason("deleted", v1alpha1.ReasonStopped, 30*time.Second)
	h.expectArchiveEndsAtStatus(st, "deleted")
	a := h.get("deleted")
	a.Finalizers = nil
	g.Expect(h.c.Update(h.ctx(), a)).To(Succeed())

	// A graceful shutdown uploads everything before the host exits.
	h.stop()
	h.expectArchiveEndsAtStatus(st, "survivor")
	g.Expect(promtestutil.ToFloat64(h.host.metrics.archiveFlushes.WithLabelValues("error"))).To(BeZero())
}

// The store going down delays archiving, says so in the Archived
// condition, a Warning Event and the age metric, and never stops the
// actor; archiving catches up when the store is back.
func (s *suite) testArchiveStoreDown(t *testing.T) {
	g := NewWithT(t)
	srv := s3test.Start(t)
	st := srv.Bucket(t, "troupe")
	h := s.startHost(t, withArchive(st, 500*time.Millisecond))
	h.run("patient", h.tickerSpec(), 60*time.Second)
	g.Eventually(h.archivedCond).WithArguments("patient").WithTimeout(20 * time.Second).Should(HaveField("Status", metav1.ConditionTrue))

	srv.Stop()
	g.Eventually(h.archivedCond).WithArguments("patient").WithTimeout(60 * time.Second).Should(And(
		HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonArchiveUnavailable)))
	g.Eventually(h.events).WithArguments("patient").Should(ContainElement(HavePrefix(v1alpha1.EventArchiveUnavailable + ":")))
	g.Expect(h.host.archiver).NotTo(BeNil())
	g.Expect(h.ready("patient").Reason).To(Equal(v1alpha1.ReasonRunning), "the actor runs on")
	during := h.get("patient").Status.Chain.Length

	srv.Restart()
	g.Eventually(h.archivedCond).WithArguments("patient").WithTimeout(60 * time.Second).Should(HaveField("Status", metav1.ConditionTrue))
	id := h.get("patient").Status.ActorID
	g.Eventually(func() uint64 { return archivedLength(t, st, id) }).WithTimeout(30 * time.Second).Should(BeNumerically(">=", during))
	h.stop()
	h.expectArchiveEndsAtStatus(st, "patient")
}

// leftover is a stopped host whose actor's chain stayed on its node.
type leftover struct {
	h     *harness
	srv   *s3test.Server
	st    objstore.Store
	short hostOption // a flush timeout of 2 s
	id    string
}

// leaveOnNode runs name on a host that uploads nothing yet (a recovery
// point of an hour), then stops the store and the host: the chain stays
// on the node. The store is left stopped.
func (s *suite) leaveOnNode(t *testing.T, name string) leftover {
	g := NewWithT(t)
	srv := s3test.Start(t)
	st := srv.Bucket(t, "troupe")
	short := func(c *Config) { c.Archive.FlushTimeout = 2 * time.Second }
	h := s.startHost(t, withArchive(st, time.Hour), short)
	h.run(name, h.tickerSpec(), 60*time.Second)
	g.Eventually(func() int64 { return h.get(name).Status.Chain.Length }).WithTimeout(20 * time.Second).Should(BeNumerically(">", 10))
	id := h.get(name).Status.ActorID
	g.Expect(archivedLength(t, st, id)).To(BeZero(), "a recovery point of an hour uploads nothing yet")
	srv.Stop()
	h.stop()
	return leftover{h: h, srv: srv, st: st, short: short, id: id}
}

// A host that stops while the store is down reports the stop after its
// flush timeout, saying the rest stays on the node; the next host on the
// node (same data directory) uploads it under the epoch that wrote it,
// though the actor now runs nowhere: what a move that waits for its old
// node needs.
func (s *suite) testArchiveLeftovers(t *testing.T) {
	g := NewWithT(t)
	l := s.leaveOnNode(t, "left")
	h, srv, st, short, id := l.h, l.srv, l.st, l.short, l.id
	g.Expect(h.archivedCond("left").Reason).To(Equal(v1alpha1.ReasonArchiveUnavailable))
	g.Expect(h.archivedCond("left").Message).To(ContainSubstring("stays on node " + h.node))
	g.Expect(promtestutil.ToFloat64(h.host.metrics.archiveFlushes.WithLabelValues("error"))).To(Equal(1.0))
	final := h.get("left").Status.Chain
	srv.Restart()

	// The actor is no longer assigned anywhere; the node's next host
	// uploads what the stopped one could not.
	h.assign("left", "", 1)
	s.startHost(t, withArchive(st, time.Hour), short, func(c *Config) { c.DataDir, c.NodeName = h.dataDir, h.node })
	g.Eventually(func() uint64 { return archivedLength(t, st, id) }).WithTimeout(60 * time.Second).Should(Equal(uint64(final.Length)))
	rep, err := archive.Verify(archiveCtx(t), st, id)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rep.Head.String()).To(Equal(final.Head))
	g.Expect(rep.History.Epochs).To(Equal([]int64{1}))
}

// A node that comes back after its actor's Actor was deleted (the manager
// wrote its tombstone) neither uploads the actor's leftovers nor claims
// the archive for a run that raced the deletion: either would recreate
// the archive the retention removes.
func (s *suite) testArchiveTombstone(t *testing.T) {
	g := NewWithT(t)
	l := s.leaveOnNode(t, "gone")
	h, st, short, id := l.h, l.st, l.short, l.id
	l.srv.Restart()
	keys := func() []string {
		k, err := st.List(archiveCtx(t), "actors/"+id+"/")
		g.Expect(err).NotTo(HaveOccurred())
		return k
	}
	claimed := keys()
	g.Expect(claimed).To(HaveLen(1), "epoch 1's claim, nothing uploaded (a recovery point of an hour)")
	g.Expect(archive.PutTombstone(archiveCtx(t), st, archive.Tombstone{ActorID: id, Namespace: h.ns, Name: "gone", DeletedAt: time.Now()})).To(Succeed())

	// The node's next host; a run assigned to it waits for the
	// directory's leftovers first, then refuses to claim.
	h2 := s.startHost(t, withArchive(st, time.Hour), short, func(c *Config) { c.DataDir, c.NodeName = h.dataDir, h.node })
	h.assign("gone", h2.pod, 2)
	c := h.waitReason("gone", v1alpha1.ReasonArchiveError, 60*time.Second)
	g.Expect(c.Message).To(ContainSubstring("was deleted"))
	g.Expect(keys()).To(Equal(claimed), "neither the leftovers nor a claim wrote to a deleted Actor's archive")
}

// The host's local tail (ArchiveConfig.LocalTail): a running actor's chain
// files on the node stay about the tail while the archive takes the
// history; a suspend uploads the rest, and the run that resumes on the
// node continues the state from the rotated chain.log.
func (s *suite) testArchiveLocalTail(t *testing.T) {
	g := NewWithT(t)
	srv := s3test.Start(t)
	st := srv.Bucket(t, "troupe")
	const tail = 4 << 10
	h := s.startHost(t, func(c *Config) {
		c.Archive = &ArchiveConfig{Store: st, Where: "s3://test", RecoveryPoint: 300 * time.Millisecond, SegmentBytes: 1 << 10,
			LocalTail: tail, FlushTimeout: 10 * time.Second}
	})
	h.create("tail", h.tickerSpec())
	h.assign("tail", h.pod, 1)
	h.waitReason("tail", v1alpha1.ReasonRunning, 60*time.Second)
	dir := filepath.Dir(h.chainFile("tail"))
	var most int64
	size := func() int64 {
		var n int64
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), chain.FileName) && !strings.HasSuffix(e.Name(), ".state") {
				if info, err := e.Info(); err == nil {
					n += info.Size()
				}
			}
		}
		most = max(most, n)
		return n
	}
	// Removed bytes: the host rotated and dropped what the archive holds.
	g.Eventually(func() string { size(); return h.metrics() }).WithTimeout(60 * time.Second).WithPolling(50 * time.Millisecond).
		Should(MatchRegexp(`troupe_host_archive_pruned_bytes_total [1-9][0-9]{3,}`))
	id := h.get("tail").Status.ActorID
	g.Expect(archivedLength(t, st, id)).To(BeNumerically(">", 0))
	t.Logf("the most the node held of the chain: %d bytes (tail %d)", most, tail)
	g.Expect(most).To(BeNumerically("<=", 3*tail))

	h.setSuspend("tail", true)
	h.waitReason("tail", v1alpha1.ReasonStopped, 30*time.Second)
	h.expectArchiveEndsAtStatus(st, "tail")
	rep, err := archive.Verify(archiveCtx(t), st, id)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rep.Origin.Length).To(BeZero(), "the history starts at the actor's first event")

	// The run that resumes on the node reads only the rotated chain.log
	// (its SegmentStart records the state): its tick count goes on from
	// the suspended run's, where a lost state would start again at 0.
	ticks := func() uint32 {
		r, err := archive.Restore(archiveCtx(t), st, id)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(r.State).To(HaveLen(16))
		return binary.LittleEndian.Uint32(r.State[4:])
	}
	suspended := ticks()
	g.Expect(suspended).To(BeNumerically(">", 10))
	before := uint64(h.get("tail").Status.Chain.Length)
	h.setSuspend("tail", false)
	h.waitReason("tail", v1alpha1.ReasonRunning, 60*time.Second)
	g.Eventually(func() uint64 { return archivedLength(t, st, id) }).WithTimeout(30 * time.Second).Should(BeNumerically(">", before+5))
	g.Expect(ticks()).To(BeNumerically(">", suspended), "the state was resumed")
	g.Expect(meta.IsStatusConditionTrue(h.get("tail").Status.Conditions, v1alpha1.ConditionStateLost)).To(BeFalse())
}
