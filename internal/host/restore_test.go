package host

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/objstore"
	"github.com/troupe-dev/troupe/internal/s3test"
)

// tickerWasm is the integration suite's ticking counter: its state is
// the number of ticks, a little-endian u64.
func tickerWasm(t testing.TB) []byte {
	return testdata(t, filepath.Join("..", "..", "..", "test", "integration", "testdata", "ticker.wasm"))
}

// restoringFrom gives a host the archive st, read again every 100ms at most
// while a restore waits.
func restoringFrom(st objstore.Store) hostOption {
	return func(c *Config) {
		c.Archive = &ArchiveConfig{Store: st, Where: "versitygw (test)", RestoreRetry: 100 * time.Millisecond, RecoveryPoint: time.Second}
	}
}

// besides starts a host of its own for the actors of a's namespace (its
// own Lease namespace): another node.
func (s *suite) besides(t *testing.T, a *harness, opts ...hostOption) *harness {
	b := s.startHost(t, opts...)
	b.ns = a.ns
	return b
}

// waitRunning waits until h runs the actor's epoch and says so in its
// Ready condition.
func waitRunning(t *testing.T, h *harness, name string, epoch int64) {
	t.Helper()
	g := NewWithT(t)
	g.Eventually(h.actor).WithArguments(name).WithTimeout(time.Minute).Should(And(HaveField("Epoch", epoch), HaveField("State", "Running")))
	g.Eventually(func() string {
		c := meta.FindStatusCondition(h.get(name).Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionTrue {
			return "not ready"
		}
		return c.Message
	}).Should(ContainSubstring("on node " + h.node))
}

// ranOnA runs a ticking counter on a host of its own (no archive) until
// it has ticked at least ticks times, and stops that host as a node's
// shutdown does (its last head in status). It returns the chain host a
// wrote and the actor's id.
func (s *suite) ranOnA(t *testing.T, name string, policy v1alpha1.RestorePolicy, ticks int) (*harness, []chain.Event, string) {
	t.Helper()
	g := NewWithT(t)
	a := s.startHost(t)
	a.create(name, v1alpha1.ActorSpec{Component: *a.wasmConfigMap(name+"-wasm", tickerWasm(t)),
		TickInterval: &metav1.Duration{Duration: 100 * time.Millisecond}, RestorePolicy: policy})
	a.assign(name, a.pod, 1)
	a.waitReason(name, v1alpha1.ReasonRunning, time.Minute)
	g.Eventually(func() int { return countTicks(readEvents(t, a.chainFile(name))) }).WithTimeout(time.Minute).
		Should(BeNumerically(">=", ticks))
	a.stop()
	evs := readEvents(t, a.chainFile(name))
	st := a.get(name).Status
	g.Expect(st.Chain).NotTo(BeNil())
	g.Expect(st.Chain.Length).To(Equal(int64(len(evs))), "host a published its last head at shutdown")
	return a, evs, st.ActorID
}

func readEvents(t testing.TB, path string) []chain.Event {
	t.Helper()
	var evs []chain.Event
	err := chain.ReadFile(path, func(e chain.Event) error {
		e.Data = bytes.Clone(e.Data)
		evs = append(evs, e)
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		t.Fatal(err)
	}
	return evs
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

// tickerState is the ticker's state after evs: one per tick.
func tickerState(evs []chain.Event) archive.State {
	return archive.State{HasState: true, Data: binary.LittleEndian.AppendUint64(nil, uint64(countTicks(evs)))}
}

// seed uploads evs as epoch's segments of the actor's archive, cut into
// segments of at most per events, as a host's uploads would.
func seed(t *testing.T, st objstore.Store, id string, epoch int64, evs []chain.Event, per int) *archive.Writer {
	t.Helper()
	w, err := archive.Claim(context.Background(), st, archive.ClaimOptions{ActorID: id, Epoch: epoch, Host: "host-a", Node: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	appendEvents(t, w, evs, 0, len(evs), per)
	return w
}

// appendEvents uploads evs[from:to] through w.
func appendEvents(t *testing.T, w *archive.Writer, evs []chain.Event, from, to, per int) {
	t.Helper()
	for i := from; i < to; i += per {
		end := min(i+per, to)
		var recs []byte
		for j := i; j < end; j++ {
			recs = append(recs, chain.EncodeRecord(&evs[j])...)
		}
		if _, err := w.Append(context.Background(), recs, tickerState(evs[:end])); err != nil {
			t.Fatalf("seeding events %d-%d: %v", i, end-1, err)
		}
	}
}

// segmentOf is the data of the first event of the chain at path.
func segmentOf(t *testing.T, path string) map[string]any {
	t.Helper()
	evs := readEvents(t, path)
	if evs[0].Kind != chain.KindSegmentStart {
		t.Fatalf("first event %s, want SegmentStart", evs[0].Kind)
	}
	var m map[string]any
	if err := json.Unmarshal(evs[0].Data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// restartedWith is the state the new run resumed from, as its
// ActorRestart records it.
func restartedWith(t *testing.T, path string) (string, float64) {
	t.Helper()
	for _, e := range readEvents(t, path) {
		if e.Kind == chain.KindRestart {
			var d struct {
				Sha256     string  `json:"stateSha256"`
				StateEvent float64 `json:"stateEvent"`
			}
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			return d.Sha256, d.StateEvent
		}
	}
	return "", -1
}

func manifestCount(t *testing.T, st objstore.Store, id string) int {
	t.Helper()
	keys, err := st.List(context.Background(), "actors/"+id+"/manifests/")
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

// testRestore: an actor that moves to a host with an archive starts from
// what the archive holds, by restorePolicy.
func (s *suite) testRestore(t *testing.T) {
	srv := s3test.Start(t)
	t.Run("FromArchiveNoGap", func(t *testing.T) {
		g := NewWithT(t)
		st := srv.Bucket(t, "troupe")
		a, evs, id := s.ranOnA(t, "mover", "", 4)
		seed(t, st, id, 1, evs, 5)
		b := s.besides(t, a, restoringFrom(st))
		b.assign("mover", b.pod, 2)
		waitRunning(t, b, "mover", 2)
		n := uint64(len(evs))
		want := tickerState(evs)
		seg := segmentOf(t, b.chainFile("mover"))
		g.Expect(seg).To(And(HaveKeyWithValue("stateRestored", true), HaveKeyWithValue("stateLost", false),
			HaveKeyWithValue("previousLength", float64(n)), HaveKeyWithValue("previousHead", evs[n-1].Hash.String()), Not(HaveKey("gap"))))
		g.Expect(seg["archive"]).To(And(HaveKeyWithValue("epoch", float64(1)), HaveKeyWithValue("hasState", true),
			HaveKeyWithValue("stateSha256", sha256Hex(want.Data))))
		sum, ev := restartedWith(t, b.chainFile("mover"))
		g.Expect(sum).To(Equal(sha256Hex(want.Data)), "the run resumed the archived count, not initialState")
		g.Expect(evs[int(ev)].Kind).To(Equal(chain.KindTick))
		g.Eventually(b.events).WithArguments("mover").Should(ContainElement(And(HavePrefix(v1alpha1.EventRestored+": "),
			ContainSubstring(fmt.Sprintf("continues from event %d", n)))))
		conds := b.get("mover").Status.Conditions
		g.Expect(meta.FindStatusCondition(conds, v1alpha1.ConditionArchiveGap)).To(BeNil())
		g.Expect(meta.FindStatusCondition(conds, v1alpha1.ConditionStateLost)).To(BeNil())
		// The count goes on from there on node b.
		g.Eventually(func() int { return countTicks(readEvents(t, b.chainFile("mover"))) }).Should(BeNumerically(">=", 2))
		// Host b claimed epoch 2 after the restore and ships from there:
		// the archive verifies end to end across both epochs.
		g.Eventually(func() (uint64, error) {
			rep, err := archive.Verify(context.Background(), st, id)
			if err != nil {
				return 0, err
			}
			return rep.Length, nil
		}).WithTimeout(time.Minute).Should(BeNumerically(">", n+2))
	})

	t.Run("FromArchiveWithAGap", func(t *testing.T) {
		g := NewWithT(t)
		st := srv.Bucket(t, "troupe")
		a, evs, id := s.ranOnA(t, "gappy", v1alpha1.RestoreFromArchive, 4)
		// Host a uploaded all but its last events before it died.
		cut := len(evs) - 3
		seed(t, st, id, 1, evs[:cut], 4)
		b := s.besides(t, a, restoringFrom(st))
		b.assign("gappy", b.pod, 2)
		waitRunning(t, b, "gappy", 2)
		seg := segmentOf(t, b.chainFile("gappy"))
		g.Expect(seg).To(And(HaveKeyWithValue("previousLength", float64(cut)), HaveKeyWithValue("stateRestored", true),
			HaveKeyWithValue("stateLost", false)))
		g.Expect(seg["gap"]).To(And(HaveKeyWithValue("from", float64(cut)), HaveKeyWithValue("to", float64(len(evs))),
			HaveKeyWithValue("lostHead", evs[len(evs)-1].Hash.String())))
		sum, _ := restartedWith(t, b.chainFile("gappy"))
		g.Expect(sum).To(Equal(sha256Hex(tickerState(evs[:cut]).Data)))
		var gap *metav1.Condition
		g.Eventually(func() *metav1.Condition {
			gap = meta.FindStatusCondition(b.get("gappy").Status.Conditions, v1alpha1.ConditionArchiveGap)
			return gap
		}).ShouldNot(BeNil())
		g.Expect(gap.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(gap.Reason).To(Equal(v1alpha1.ReasonEventsLost))
		g.Expect(gap.Message).To(ContainSubstring(fmt.Sprintf("events %d to %d", cut, len(evs)-1)))
		g.Eventually(b.events).WithArguments("gappy").Should(ContainElement(And(HavePrefix(v1alpha1.EventArchiveGap+": "),
			ContainSubstring("never reached the archive"))))
	})

	t.Run("WaitForNodeUntilTheArchiveCatchesUp", func(t *testing.T) {
		g := NewWithT(t)
		st := srv.Bucket(t, "troupe")
		a, evs, id := s.ranOnA(t, "patient", v1alpha1.RestoreWaitForNode, 4)
		cut := len(evs) - 3
		w := seed(t, st, id, 1, evs[:cut], 4)
		b := s.besides(t, a, restoringFrom(st))
		b.assign("patient", b.pod, 2)
		c := b.waitReason("patient", v1alpha1.ReasonWaitingForNode, time.Minute)
		g.Expect(c.Message).To(And(ContainSubstring(fmt.Sprintf("events up to %d", cut)), ContainSubstring(fmt.Sprintf("of the %d", len(evs)))))
		// It keeps waiting, reading only: no claim fences host a.
		g.Consistently(func() string { return b.ready("patient").Reason }).WithTimeout(time.Second).Should(Equal(v1alpha1.ReasonWaitingForNode))
		g.Expect(manifestCount(t, st, id)).To(Equal(1))
		// Node a comes back and uploads the rest: the run restores it all.
		appendEvents(t, w, evs, cut, len(evs), 4)
		waitRunning(t, b, "patient", 2)
		seg := segmentOf(t, b.chainFile("patient"))
		g.Expect(seg).To(And(HaveKeyWithValue("previousLength", float64(len(evs))), Not(HaveKey("gap"))))
		sum, _ := restartedWith(t, b.chainFile("patient"))
		g.Expect(sum).To(Equal(sha256Hex(tickerState(evs).Data)))
		g.Expect(meta.FindStatusCondition(b.get("patient").Status.Conditions, v1alpha1.ConditionArchiveGap)).To(BeNil())
	})

	t.Run("ArchiveErrorIsRetried", func(t *testing.T) {
		g := NewWithT(t)
		st := srv.Bucket(t, "troupe")
		a, evs, id := s.ranOnA(t, "damaged", "", 2)
		seed(t, st, id, 1, evs, 100)
		h, err := archive.Resolve(context.Background(), st, id)
		g.Expect(err).NotTo(HaveOccurred())
		tip := h.Tip()
		key := archive.StateKey(id, tip.State.Epoch, &tip.State)
		good, err := st.Get(context.Background(), key, 1<<20)
		g.Expect(err).NotTo(HaveOccurred())
		bad := bytes.Clone(good)
		bad[0] ^= 0xff
		g.Expect(st.Put(context.Background(), key, bytes.NewReader(bad), int64(len(bad)), false)).To(Succeed())

		b := s.besides(t, a, restoringFrom(st))
		b.assign("damaged", b.pod, 2)
		c := b.waitReason("damaged", v1alpha1.ReasonArchiveError, time.Minute)
		g.Expect(c.Message).To(And(ContainSubstring(key), ContainSubstring("SHA-256")))
		g.Eventually(b.events).WithArguments("damaged").Should(ContainElement(HavePrefix(v1alpha1.ReasonArchiveError + ": ")))
		// Repaired (or reachable again): the retry restores it.
		g.Expect(st.Put(context.Background(), key, bytes.NewReader(good), int64(len(good)), false)).To(Succeed())
		waitRunning(t, b, "damaged", 2)
		sum, _ := restartedWith(t, b.chainFile("damaged"))
		g.Expect(sum).To(Equal(sha256Hex(good)))
		g.Expect(b.metrics()).To(ContainSubstring(`troupe_host_archive_restores_total{result="ArchiveError"}`))
	})

	t.Run("NoHistoryStartsWithoutState", func(t *testing.T) {
		g := NewWithT(t)
		st := srv.Bucket(t, "troupe")
		a, evs, _ := s.ranOnA(t, "unarchived", "", 1)
		b := s.besides(t, a, restoringFrom(st))
		b.assign("unarchived", b.pod, 2)
		waitRunning(t, b, "unarchived", 2)
		seg := segmentOf(t, b.chainFile("unarchived"))
		g.Expect(seg).To(And(HaveKeyWithValue("stateLost", true), HaveKeyWithValue("previousLength", float64(len(evs))), Not(HaveKey("archive"))))
		var lost *metav1.Condition
		g.Eventually(func() *metav1.Condition {
			lost = meta.FindStatusCondition(b.get("unarchived").Status.Conditions, v1alpha1.ConditionStateLost)
			return lost
		}).ShouldNot(BeNil())
		g.Expect(lost.Message).To(And(ContainSubstring("the archive holds no history of this actor"), Not(ContainSubstring("until chains are archived"))))
	})
}

// The retry delay is not part of what makes an ArchiveError message new.
func TestStripRetry(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"with a delay":    {"reading the archive (x): boom; retrying in 1s", "reading the archive (x): boom"},
		"without a delay": {"waiting", "waiting"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := stripRetry(tc.in); got != tc.want || !strings.HasPrefix(tc.in, got) {
				t.Errorf("stripRetry(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
