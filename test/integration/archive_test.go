package integration

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/host"
	"github.com/troupe-dev/troupe/internal/objstore"
	"github.com/troupe-dev/troupe/internal/s3test"
)

// TestArchive runs issue 13's moves through the manager and two hosts
// with separate data directories, archiving to a real S3 server
// (versitygw): a host killed, a host drained, a store that goes down.
func TestArchive(t *testing.T) {
	s := newSuite(t)
	srv := s3test.Start(t)
	t.Run("KilledHostsActorContinuesFromTheArchive", func(t *testing.T) { s.testKilledHostRestores(t, srv) })
	t.Run("DrainLosesNoEvent", func(t *testing.T) { s.testDrainLosesNothing(t, srv) })
	NewWithT(t).Eventually(ourGoroutines).WithTimeout(prompt).WithPolling(100*time.Millisecond).Should(BeEmpty(),
		"goroutines of the manager or the hosts outlived their tests")
}

// cuttableStore is a host's way to the store, which the test can cut as
// a network partition (or a dead node) would.
type cuttableStore struct {
	objstore.Store
	cut atomic.Bool
}

var errCut = errors.New("the test cut this host off the store")

func (c *cuttableStore) Put(ctx context.Context, key string, r io.Reader, size int64, ifAbsent bool) error {
	if c.cut.Load() {
		return errCut
	}
	return c.Store.Put(ctx, key, r, size, ifAbsent)
}

func (c *cuttableStore) Get(ctx context.Context, key string, max int64) ([]byte, error) {
	if c.cut.Load() {
		return nil, errCut
	}
	return c.Store.Get(ctx, key, max)
}

func (c *cuttableStore) List(ctx context.Context, prefix string) ([]string, error) {
	if c.cut.Load() {
		return nil, errCut
	}
	return c.Store.List(ctx, prefix)
}

func (c *cuttableStore) Delete(ctx context.Context, key string) error {
	if c.cut.Load() {
		return errCut
	}
	return c.Store.Delete(ctx, key)
}

// archiveTo gives a host the archive st: uploads within half a second,
// a second for a lifecycle step's flush, restores retried often.
func archiveTo(st objstore.Store) func(*host.Config) {
	return func(c *host.Config) {
		c.Archive = &host.ArchiveConfig{Store: st, Where: "versitygw (test)", RecoveryPoint: 500 * time.Millisecond,
			FlushTimeout: time.Second, RestoreRetry: 200 * time.Millisecond}
	}
}

// archivedLength is where the actor's archived history ends (0: none).
func archivedLength(st objstore.Store, id string) uint64 {
	h, err := archive.Resolve(context.Background(), st, id)
	if err != nil || h.Tip() == nil {
		return 0
	}
	return h.Tip().Length
}

// tickerSum is the digest of the ticker's state after ticks ticks.
func tickerSum(ticks int) string {
	s := sha256.Sum256(binary.LittleEndian.AppendUint64(nil, uint64(ticks)))
	return hex.EncodeToString(s[:])
}

func countTicks(evs []chain.Event) int {
	n := 0
	for _, e := range evs {
		if e.Kind == chain.KindTick {
			n++
		}
	}
	return n
}

// segmentStart is the data of a SegmentStart.
type segmentStart struct {
	PreviousLength uint64 `json:"previousLength"`
	PreviousHead   string `json:"previousHead"`
	StateRestored  bool   `json:"stateRestored"`
	StateLost      bool   `json:"stateLost"`
	Archive        *struct {
		Epoch       int64  `json:"epoch"`
		StateSha256 string `json:"stateSha256"`
	} `json:"archive"`
	Gap *struct {
		From     uint64 `json:"from"`
		To       uint64 `json:"to"`
		LostHead string `json:"lostHead"`
	} `json:"gap"`
}

func readSegmentStart(g Gomega, events []chain.Event) segmentStart {
	g.Expect(events[0].Kind).To(Equal(chain.KindSegmentStart))
	var seg segmentStart
	g.Expect(json.Unmarshal(events[0].Data, &seg)).To(Succeed())
	return seg
}

// readyOn waits until the actor is Ready on th (a stale Ready of the
// host it left does not count).
func (c *cluster) readyOn(name string, th *testHost) *v1alpha1.Actor {
	c.t.Helper()
	var a *v1alpha1.Actor
	c.g().Eventually(func() string {
		a = c.get(name)
		if a.Status.HostPod != th.name || !readyNow(a) {
			return describe(a)
		}
		return "ready on " + th.name
	}).Should(Equal("ready on " + th.name))
	return a
}

// verifiedUpTo waits until the archive verifies end to end and ends at the
// head in the Actor's status (the host that wrote it has stopped).
func (c *cluster) verifiedUpTo(st objstore.Store, name string) *archive.Report {
	c.t.Helper()
	a := c.get(name)
	var rep *archive.Report
	c.g().Eventually(func() error {
		var err error
		rep, err = archive.Verify(context.Background(), st, a.Status.ActorID)
		if err != nil {
			return err
		}
		if rep.Head.String() != a.Status.Chain.Head || int64(rep.Length) != a.Status.Chain.Length {
			return fmt.Errorf("the archive ends at %s/%d, the status at %s/%d", rep.Head.Short(), rep.Length, a.Status.Chain.HeadShort, a.Status.Chain.Length)
		}
		return nil
	}).Should(Succeed())
	return rep
}

// testKilledHostRestores: a counter ticks on host a, whose store is cut
// (its uploads wait, the actor runs on), then host a dies with its data
// directory; the actor moves to host b, whose count goes on from the
// archived state, naming the events that died with host a; the chain
// verifies from the archive end to end.
func (s *suite) testKilledHostRestores(t *testing.T, srv *s3test.Server) {
	c := s.newCluster(t, clusterOptions{})
	g := c.g()
	st := srv.Bucket(t, "troupe")
	toA := &cuttableStore{Store: st}
	a := c.startHost("host-a", archiveTo(toA))
	src := c.componentConfigMap("ticker", testdata(t, "ticker.wasm"), false)
	c.obs.track("counter")
	c.create("counter", v1alpha1.ActorSpec{Component: *src, TickInterval: &metav1.Duration{Duration: 100 * time.Millisecond}})
	before := c.waitReady("counter", prompt)
	id := before.Status.ActorID
	g.Expect(before.Status.HostPod).To(Equal(a.name))
	g.Eventually(func() uint64 { return archivedLength(st, id) }).Should(BeNumerically(">=", 20), "host a uploads as the actor ticks")
	g.Eventually(func() string {
		return condReason(c.get("counter"), v1alpha1.ConditionArchived)
	}).Should(Equal(v1alpha1.ReasonArchiveUpToDate))

	// The store goes away for host a: archiving waits, the actor runs on.
	toA.cut.Store(true)
	g.Eventually(func() string { return condReason(c.get("counter"), v1alpha1.ConditionArchived) }).
		Should(Equal(v1alpha1.ReasonArchiveUnavailable), "the status says archiving is behind")
	// Read once an upload failed: one in flight at the cut has landed.
	archived := archivedLength(st, id)
	g.Eventually(func() int64 { return c.get("counter").Status.Chain.Length }).Should(BeNumerically(">", int64(archived)+5),
		"the actor ticks on while the store is down")
	g.Expect(readyNow(c.get("counter"))).To(BeTrue(), "a store that is down fails no actor")

	b := c.startHost("host-b", archiveTo(st))
	a.crash()
	g.Eventually(a.stopped).WithTimeout(slow).Should(BeClosed())
	_, aEvents, err := readChainFile(a.chainFile(before))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(os.RemoveAll(a.dataDir)).To(Succeed(), "host a's disk is gone")

	now := c.readyOn("counter", b)
	var lastOnA *v1alpha1.ChainStatus
	for _, v := range c.obs.history("counter") {
		if v.Status.HostPod == a.name && v.Status.Chain != nil {
			lastOnA = v.Status.Chain
		}
	}
	g.Expect(lastOnA).NotTo(BeNil())
	g.Expect(uint64(lastOnA.Length)).To(BeNumerically(">", archived))

	_, bEvents, err := readChainFile(b.chainFile(now))
	g.Expect(err).NotTo(HaveOccurred())
	seg := readSegmentStart(g, bEvents)
	g.Expect(seg.PreviousLength).To(Equal(archived), "the segment continues the archive's head as it was when the store was cut")
	g.Expect(seg.PreviousHead).To(Equal(aEvents[archived-1].Hash.String()))
	g.Expect(seg.StateRestored).To(BeTrue())
	g.Expect(seg.StateLost).To(BeFalse())
	ticks := countTicks(aEvents[:archived])
	g.Expect(ticks).To(BeNumerically(">", 0))
	g.Expect(seg.Archive).NotTo(BeNil())
	g.Expect(seg.Archive.StateSha256).To(Equal(tickerSum(ticks)), "the count restored is the archived one, not initialState")
	g.Expect(seg.Gap).NotTo(BeNil())
	g.Expect(seg.Gap.From).To(Equal(archived))
	g.Expect(seg.Gap.To).To(Equal(uint64(lastOnA.Length)))
	g.Expect(seg.Gap.LostHead).To(Equal(lastOnA.Head))
	gap := meta.FindStatusCondition(now.Status.Conditions, v1alpha1.ConditionArchiveGap)
	g.Eventually(func() *metav1.Condition {
		gap = meta.FindStatusCondition(c.get("counter").Status.Conditions, v1alpha1.ConditionArchiveGap)
		return gap
	}).ShouldNot(BeNil())
	g.Expect(gap.Reason).To(Equal(v1alpha1.ReasonEventsLost))
	g.Expect(gap.Message).To(ContainSubstring(fmt.Sprintf("events %d to %d", archived, lastOnA.Length-1)))
	g.Eventually(func() []string { return c.eventNotes("counter") }).Should(And(
		ContainElement(HavePrefix(v1alpha1.EventRestored+": ")), ContainElement(HavePrefix(v1alpha1.EventArchiveGap+": "))))
	// The count goes on from the archived one: its next tick's state.
	g.Eventually(func() []string {
		_, evs, err := readChainFile(b.chainFile(now))
		if err != nil {
			return nil
		}
		return tickSums(evs)
	}).Should(ContainElement(tickerSum(ticks + 1)))

	// Host b stops as a node drains: everything reaches the archive, and
	// the whole history verifies from it up to the head in status.
	b.stop()
	rep := c.verifiedUpTo(st, "counter")
	g.Expect(rep.OriginKind).To(Equal(chain.KindActorStart), "from the actor's first event")
	g.Expect(rep.History.Epochs).To(Equal([]int64{1, 2}))
}

// tickSums are the state digests the ticks of evs record.
func tickSums(evs []chain.Event) []string {
	var out []string
	for i := range evs {
		if r, ok, err := chain.RecordedState(&evs[i]); err == nil && ok && evs[i].Kind == chain.KindTick {
			out = append(out, r.Sha256)
		}
	}
	return out
}

func condReason(a *v1alpha1.Actor, typ string) string {
	if c := meta.FindStatusCondition(a.Status.Conditions, typ); c != nil {
		return c.Reason
	}
	return ""
}

// testDrainLosesNothing: host a shuts down gracefully (a drained node):
// it uploads the rest of the chain before it reports the stop, so the
// actor continues on host b from host a's very last event, no gap.
func (s *suite) testDrainLosesNothing(t *testing.T, srv *s3test.Server) {
	c := s.newCluster(t, clusterOptions{})
	g := c.g()
	st := srv.Bucket(t, "troupe")
	a := c.startHost("host-a", archiveTo(st))
	src := c.componentConfigMap("ticker", testdata(t, "ticker.wasm"), false)
	c.obs.track("drained")
	c.create("drained", v1alpha1.ActorSpec{Component: *src, TickInterval: &metav1.Duration{Duration: 100 * time.Millisecond}})
	before := c.waitReady("drained", prompt)
	g.Eventually(func() int64 { return c.get("drained").Status.Chain.Length }).Should(BeNumerically(">", 15))
	b := c.startHost("host-b", archiveTo(st))
	a.stop()
	_, aEvents, err := readChainFile(a.chainFile(before))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(os.RemoveAll(a.dataDir)).To(Succeed())

	now := c.readyOn("drained", b)
	_, bEvents, err := readChainFile(b.chainFile(now))
	g.Expect(err).NotTo(HaveOccurred())
	seg := readSegmentStart(g, bEvents)
	g.Expect(seg.PreviousLength).To(Equal(uint64(len(aEvents))), "host b continues host a's last event")
	g.Expect(seg.PreviousHead).To(Equal(aEvents[len(aEvents)-1].Hash.String()))
	g.Expect(seg.Gap).To(BeNil())
	g.Expect(seg.StateRestored).To(BeTrue())
	g.Expect(seg.Archive.StateSha256).To(Equal(tickerSum(countTicks(aEvents))))
	g.Expect(meta.FindStatusCondition(now.Status.Conditions, v1alpha1.ConditionArchiveGap)).To(BeNil())
	g.Expect(c.eventNotes("drained")).NotTo(ContainElement(HavePrefix(v1alpha1.EventArchiveGap + ": ")))

	b.stop()
	rep := c.verifiedUpTo(st, "drained")
	g.Expect(rep.History.Epochs).To(Equal([]int64{1, 2}))
}
