package host

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	. "github.com/onsi/gomega"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/testutil"
)

func (s *suite) testDeletion(t *testing.T) {
	g := NewWithT(t)
	h := s.startHost(t)
	a := h.create("doomed", h.okSpec("doomed"))
	a.Finalizers = []string{v1alpha1.ChainFlushFinalizer}
	g.Expect(h.c.Update(h.ctx(), a)).To(Succeed())
	h.assign("doomed", h.pod, 1)
	h.waitReason("doomed", v1alpha1.ReasonRunning, 20*time.Second)

	g.Expect(h.c.Delete(h.ctx(), h.get("doomed"))).To(Succeed())
	c := h.waitReason("doomed", v1alpha1.ReasonStopped, 20*time.Second)
	g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(c.Message).To(ContainSubstring("flushed its chain"))
	g.Expect(h.actor("doomed").State).To(Equal("Ended"))
	g.Expect(h.metrics()).To(ContainSubstring("troupe_host_actors_running 0"))
	// The status holds the final head: the chain on disk, ending with the
	// stop, flushed.
	st := h.get("doomed").Status
	rep, err := chain.VerifyFile(h.chainFile("doomed"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rep.OK()).To(BeTrue())
	g.Expect(st.Chain.Head).To(Equal(rep.Head.String()))
	g.Expect(st.Chain.Length).To(Equal(int64(rep.Length)))
	events, err := h.chain("doomed")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(events[len(events)-1].Kind).To(Equal(chain.KindActorStop))
	g.Expect(string(events[len(events)-1].Data)).To(ContainSubstring("the Actor was deleted"))

	// The controller removes its finalizer; the host forgets the actor.
	a = h.get("doomed")
	a.Finalizers = nil
	g.Expect(h.c.Update(h.ctx(), a)).To(Succeed())
	g.Eventually(h.actor).WithArguments("doomed").Should(HaveField("State", "absent"))
}

func (s *suite) testMovedAway(t *testing.T) {
	g := NewWithT(t)
	h := s.startHost(t)
	h.run("mover", h.okSpec("mover"), 20*time.Second)
	before := h.get("mover")

	h.assign("mover", "another-host", 2)
	g.Eventually(h.actor).WithArguments("mover").WithTimeout(10 * time.Second).Should(HaveField("State", "absent"))
	g.Expect(h.metrics()).To(ContainSubstring("troupe_host_actors_running 0"))
	rep, err := chain.VerifyFile(h.chainFile("mover"))
	g.Expect(err).NotTo(HaveOccurred())
	var last chain.Event
	g.Expect(chain.ReadFile(h.chainFile("mover"), func(e chain.Event) error {
		last = e
		last.Data = append([]byte(nil), e.Data...)
		return nil
	})).To(Succeed())
	g.Expect(last.Kind).To(Equal(chain.KindActorStop))
	g.Expect(string(last.Data)).To(ContainSubstring(`now assigned to \"another-host\" (epoch 2)`))
	// The host no longer writes this actor's status: the stop's head is
	// not published (the new host links its segment to the last head the
	// old one could publish).
	after := h.get("mover")
	g.Expect(after.Status.Chain.Head).To(Equal(before.Status.Chain.Head))
	g.Expect(after.Status.Chain.Head).NotTo(Equal(rep.Head.String()))
}

func (s *suite) testRestarts(t *testing.T) {
	g := NewWithT(t)
	h := s.startHost(t)
	h.run("restarter", h.probeSpec(), 60*time.Second)
	runs := func() string {
		return metricValue(h.metrics(), "troupe_actor_probe_runs", "namespace="+h.ns, "actor=restarter")
	}
	g.Expect(runs()).To(Equal("1"))

	// A new epoch on the same host: a restart from the saved state.
	h.assign("restarter", h.pod, 2)
	g.Eventually(runs).WithTimeout(30 * time.Second).Should(Equal("2"))
	g.Eventually(func() v1alpha1.Phase { return h.get("restarter").Status.Phase }).Should(Equal(v1alpha1.PhaseRunning))

	// A spec change (a new generation): a restart with the new spec.
	a := h.get("restarter")
	a.Spec.Env = append(a.Spec.Env, literal("PROBE_VARS", "COLOR"), literal("COLOR", "blue"))
	g.Expect(h.c.Update(h.ctx(), a)).To(Succeed())
	g.Eventually(runs).WithTimeout(30 * time.Second).Should(Equal("3"))
	g.Eventually(func() int64 { return h.ready("restarter").ObservedGeneration }).Should(Equal(int64(2)))
	g.Expect(h.custom("restarter", "env")).To(ContainElement(HaveKeyWithValue("sha256", sha256Hex([]byte("blue")))))

	// One chain across the three runs, each resumed from saved state.
	rep, err := chain.VerifyFile(h.chainFile("restarter"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rep.OK()).To(BeTrue())
	var starts, resumed int
	g.Expect(chain.ReadFile(h.chainFile("restarter"), func(e chain.Event) error {
		if e.Kind == chain.KindActorStart {
			starts++
			if strings.Contains(string(e.Data), `"resumed":true`) {
				resumed++
			}
		}
		return nil
	})).To(Succeed())
	g.Expect([]int{starts, resumed}).To(Equal([]int{3, 2}))
}

func randomHead() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// setChainStatus plays a host on node that published a head ("" for a
// host of v0.1.0, which did not say its node).
func (h *harness) setChainStatus(name, head string, length int64, node string) {
	h.t.Helper()
	NewWithT(h.t).Eventually(func() error {
		a := h.get(name)
		a.Status.Chain = &v1alpha1.ChainStatus{Head: head, HeadShort: head[:12], Length: length, Node: node}
		return h.c.Status().Update(h.ctx(), a)
	}).Should(Succeed())
}

func (s *suite) testNewSegment(t *testing.T) {
	g := NewWithT(t)
	h := s.startHost(t)
	h.create("moved-here", h.okSpec("moved-here"))
	// It ran elsewhere: 7 events, ending at prev.
	prev := randomHead()
	h.assign("moved-here", "", 1)
	h.setChainStatus("moved-here", prev, 7, "node-gone")
	h.assign("moved-here", h.pod, 2)
	h.waitReason("moved-here", v1alpha1.ReasonRunning, 20*time.Second)
	first := firstEvent(t, h.chainFile("moved-here"))
	g.Expect(first.Kind).To(Equal(chain.KindSegmentStart))
	g.Expect(first.Parent.String()).To(Equal(prev))
	g.Expect(first.Seq).To(Equal(uint64(7)))
	a := h.get("moved-here")
	st := a.Status.Chain
	g.Expect(st.Length).To(BeNumerically(">", 7))
	g.Expect(st.Node).To(Equal(h.node), "status.chain names the node that now holds the head")

	// The actor's state stayed on node-gone: the move says so in its
	// status, an Event and the segment's first event.
	lost := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionStateLost)
	g.Expect(lost).NotTo(BeNil(), "a StateLost condition after a move to a node without the state")
	g.Expect(lost.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(lost.Reason).To(Equal(v1alpha1.ReasonNoStateOnNode))
	g.Expect(lost.Message).To(And(ContainSubstring("on node "+h.node+" from event 7"), ContainSubstring("spec.initialState"),
		ContainSubstring("stay on node node-gone")))
	g.Eventually(h.events).WithArguments("moved-here").Should(ContainElement(
		And(HavePrefix(v1alpha1.EventStateLost+": "), ContainSubstring("stay on node node-gone"))))
	g.Expect(segmentData(t, h.chainFile("moved-here"))).To(And(HaveKeyWithValue("stateLost", true),
		HaveKeyWithValue("stateRestored", false), HaveKeyWithValue("previousNode", "node-gone")))
	firstLoss := lost.LastTransitionTime

	// It moves away, runs elsewhere again (a head this node never saw),
	// and comes back: the old local chain is kept aside, a new segment
	// links to the head in status.
	h.assign("moved-here", "another-host", 3)
	g.Eventually(h.actor).WithArguments("moved-here").Should(HaveField("State", "absent"))
	elsewhere := randomHead()
	h.setChainStatus("moved-here", elsewhere, st.Length+40, "")
	h.assign("moved-here", h.pod, 4)
	g.Eventually(h.actor).WithArguments("moved-here").WithTimeout(20 * time.Second).Should(
		And(HaveField("Epoch", int64(4)), HaveField("State", "Running")))
	first = firstEvent(t, h.chainFile("moved-here"))
	g.Expect(first.Parent.String()).To(Equal(elsewhere))
	g.Expect(first.Seq).To(Equal(uint64(st.Length + 40)))
	old, err := filepath.Glob(h.chainFile("moved-here") + ".*.old")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(old).To(HaveLen(1))
	g.Expect(firstEvent(t, old[0]).Parent.String()).To(Equal(prev), "the old segment is kept whole")
	g.Eventually(h.events).WithArguments("moved-here").Should(ContainElement(ContainSubstring("NewChainSegment: the chain on this node does not contain the head")))
	// A second loss, told anew: the state this node held went aside with
	// its chain; the previous node is unknown (a host that did not say).
	var lost2 *metav1.Condition
	g.Eventually(func() *metav1.Condition {
		lost2 = meta.FindStatusCondition(h.get("moved-here").Status.Conditions, v1alpha1.ConditionStateLost)
		return lost2
	}).Should(HaveField("Message", ContainSubstring(fmt.Sprintf("from event %d", st.Length+40))))
	g.Expect(lost2.Message).To(And(ContainSubstring("were moved aside (chain.log."), Not(ContainSubstring("stay on node"))))
	g.Expect(lost2.LastTransitionTime.Before(&firstLoss)).To(BeFalse())
	g.Expect(segmentData(t, h.chainFile("moved-here"))).To(And(HaveKeyWithValue("stateLost", true), Not(HaveKey("previousNode"))))

	// Back once more with the status head it published itself: the local
	// chain simply goes on, even when the status lags behind it.
	g.Eventually(func() int64 { return h.get("moved-here").Status.Chain.Length }).Should(BeNumerically(">", st.Length+40))
	h.assign("moved-here", h.pod, 5)
	g.Eventually(h.actor).WithArguments("moved-here").WithTimeout(20 * time.Second).Should(
		And(HaveField("Epoch", int64(5)), HaveField("State", "Running")))
	g.Expect(firstEvent(t, h.chainFile("moved-here")).Parent.String()).To(Equal(elsewhere))
	old, _ = filepath.Glob(h.chainFile("moved-here") + ".*.old")
	g.Expect(old).To(HaveLen(1))
	// That run resumed its own state: no new loss, the condition still
	// tells the last one.
	count := func(reason string) int {
		n := 0
		for _, e := range h.events("moved-here") {
			if strings.HasPrefix(e, reason+": ") {
				n++
			}
		}
		return n
	}
	g.Eventually(count).WithArguments(v1alpha1.EventStarted).Should(Equal(3))
	g.Expect(count(v1alpha1.EventStateLost)).To(Equal(2), "one StateLost Event per move")
	g.Expect(meta.FindStatusCondition(h.get("moved-here").Status.Conditions, v1alpha1.ConditionStateLost).Message).To(Equal(lost2.Message))
}

// segmentData is the data of the first event of the chain at path, a
// SegmentStart.
func segmentData(t *testing.T, path string) map[string]any {
	t.Helper()
	var data map[string]any
	err := chain.ReadFile(path, func(e chain.Event) error {
		if e.Kind != chain.KindSegmentStart {
			return fmt.Errorf("the first event is %s, not a segment start", e.Kind)
		}
		if err := json.Unmarshal(e.Data, &data); err != nil {
			return err
		}
		return errFound
	})
	if !errors.Is(err, errFound) {
		t.Fatalf("reading the segment start of %s: %v", path, err)
	}
	return data
}

func firstEvent(t *testing.T, path string) chain.Event {
	t.Helper()
	var first chain.Event
	err := chain.ReadFile(path, func(e chain.Event) error {
		first = e
		first.Data = nil
		return errFound
	})
	if !errors.Is(err, errFound) {
		t.Fatalf("reading %s: %v", path, err)
	}
	return first
}

// testStatusRate: a flood of head moves becomes at most one write per
// interval; a lifecycle transition is written at once; a view of an epoch
// the actor no longer has is never written.
func (s *suite) testStatusRate(t *testing.T) {
	g := NewWithT(t)
	h := s.startHost(t)
	h.create("chatty", h.okSpec("chatty"))
	// Assigned to a pod that is not running, so that only this test's
	// publisher writes.
	const pod = "chatty-host"
	h.assign("chatty", pod, 1)
	m := newHostMetrics(nil, func() float64 { return 0 }, h.host.envs)
	const interval = 200 * time.Millisecond
	p := newPublisher(h.c, h.c, pod, interval, 0, h.host.log, m)
	ctx, cancel := contextWithCleanup(t)
	go p.run(ctx, 2)
	key := h.key("chatty")
	writes := func() float64 { return counterValue(m, "ok") }

	p.begin(key, 1, 1)
	flood := 2 * time.Second
	begin := time.Now()
	n := 0
	for time.Since(begin) < flood {
		n++
		head := randomHead()
		length := uint64(n)
		p.update(key, 1, false, func(v *view) { v.hasChain, v.head, v.length = true, head, length })
		time.Sleep(time.Millisecond)
	}
	g.Eventually(func() int64 { return h.get("chatty").Status.Chain.Length }).Should(Equal(int64(n)))
	w := writes()
	t.Logf("%d head moves in %s became %v status writes (interval %s)", n, flood, w, interval)
	g.Expect(w).To(BeNumerically("<=", float64(flood/interval)+2))
	g.Expect(w).To(BeNumerically(">=", 2))

	// A transition is not held back by the interval: with an interval of
	// an hour, it is still written.
	cancel()
	slow := newPublisher(h.c, h.c, pod, time.Hour, 0, h.host.log, m)
	ctx, cancel = contextWithCleanup(t)
	go slow.run(ctx, 1)
	p = slow
	p.begin(key, 1, 1)
	p.update(key, 1, true, func(v *view) {
		v.phase = v1alpha1.PhaseFailed
		v.ready = &readyCond{status: metav1.ConditionFalse, reason: v1alpha1.ReasonTrapped, message: "boom"}
	})
	g.Eventually(func() v1alpha1.Phase { return h.get("chatty").Status.Phase }).WithTimeout(10 * time.Second).Should(Equal(v1alpha1.PhaseFailed))

	// The controller moved it on (epoch 2): epoch 1's views are dropped.
	h.assign("chatty", pod, 2)
	before := h.get("chatty").ResourceVersion
	p.update(key, 1, true, func(v *view) { v.phase = v1alpha1.PhaseRunning })
	g.Eventually(func() float64 { return counterValue(m, "skipped") }).Should(BeNumerically(">=", 1))
	g.Expect(h.get("chatty").ResourceVersion).To(Equal(before))
	// A word about epoch 2 starts a fresh view and is written; a late one
	// about epoch 1 is dropped.
	p.update(key, 2, true, func(v *view) {
		v.ready = &readyCond{status: metav1.ConditionFalse, reason: v1alpha1.ReasonStopped, message: "deleted"}
	})
	p.update(key, 1, true, func(v *view) { v.phase = v1alpha1.PhaseSucceeded })
	g.Eventually(func() string { return h.ready("chatty").Reason }).Should(Equal(v1alpha1.ReasonStopped))
	g.Expect(h.get("chatty").Status.Phase).To(Equal(v1alpha1.PhaseScheduled)) // the controller's, not epoch 1's Succeeded
	cancel()
}

// testChattyActor: a ticking actor that appends hundreds of events a
// second moves its status head at most once per status interval.
func (s *suite) testChattyActor(t *testing.T) {
	g := NewWithT(t)
	const interval = 500 * time.Millisecond
	h := s.startHost(t, func(c *Config) { c.StatusInterval = interval })
	h.create("chatty", v1alpha1.ActorSpec{
		Component:    *h.s.urlSource(testutil.BuildActor(t, "internal/host/testdata/chatty")),
		TickInterval: &metav1.Duration{Duration: 100 * time.Millisecond},
	})
	h.assign("chatty", h.pod, 1)
	h.waitReason("chatty", v1alpha1.ReasonRunning, 60*time.Second)
	writes := func() float64 { return counterValue(h.host.metrics, "ok") }
	w0, l0 := writes(), h.get("chatty").Status.Chain.Length
	begin := time.Now()
	var lengths []int64
	g.Eventually(func() int {
		if l := h.get("chatty").Status.Chain.Length; len(lengths) == 0 || l != lengths[len(lengths)-1] {
			lengths = append(lengths, l)
		}
		return len(lengths)
	}).WithTimeout(20 * time.Second).WithPolling(20 * time.Millisecond).Should(BeNumerically(">=", 6))
	took := time.Since(begin)
	w := writes() - w0
	events, err := h.chain("chatty")
	g.Expect(err).NotTo(HaveOccurred())
	appended := int64(len(events)) - l0
	t.Logf("%d events appended in %s became %v status writes (interval %s)", appended, took.Round(time.Millisecond), w, interval)
	g.Expect(appended).To(BeNumerically(">", 10*int64(w)), "the actor is chatty")
	g.Expect(w).To(BeNumerically("<=", float64(took/interval)+2))
	g.Expect(lengths[len(lengths)-1]).To(BeNumerically("<=", len(events)))
}

func (s *suite) testShutdown(t *testing.T) {
	g := NewWithT(t)
	h := s.startHost(t)
	h.run("survivor", h.okSpec("survivor"), 20*time.Second)
	h.stop()
	// The Lease is gone, so the controller moves the actor at once ...
	var l coordinationv1.Lease
	err := h.c.Get(h.ctx(), types.NamespacedName{Namespace: h.ns, Name: h.pod}, &l)
	g.Expect(isNotFound(err)).To(BeTrue(), "lease: %v", err)
	// ... and the status holds the head of the flushed chain, so the next
	// host's segment links to the very last event.
	rep, err := chain.VerifyFile(h.chainFile("survivor"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(h.get("survivor").Status.Chain.Head).To(Equal(rep.Head.String()))
	var last chain.Event
	g.Expect(chain.ReadFile(h.chainFile("survivor"), func(e chain.Event) error { last = e; return nil })).To(Succeed())
	g.Expect(last.Kind).To(Equal(chain.KindActorStop))
}

func (s *suite) testChainEndpoint(t *testing.T) {
	g := NewWithT(t)
	h := s.startHost(t)
	for path, code := range map[string]int{
		"/actors/" + h.ns + "/nothing/chain":                http.StatusNotFound,
		"/actors/Bad_NS/x/chain":                            http.StatusBadRequest,
		"/actors/" + h.ns + "/x/chain?actorID=../../etc":    http.StatusBadRequest,
		"/actors/" + h.ns + "/..%2F..%2Fetc/chain":          http.StatusBadRequest,
		"/actors/" + h.ns + "/x/chain?actorID=no-such-uuid": http.StatusNotFound,
	} {
		resp, err := http.Get(h.base + path)
		g.Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(code), path)
	}
	resp, err := http.Post(h.base+"/actors/"+h.ns+"/x/chain", "text/plain", strings.NewReader("x"))
	g.Expect(err).NotTo(HaveOccurred())
	resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusMethodNotAllowed), "the endpoint is read-only")

	// An actor that is gone from this host still has its chain on disk.
	h.run("gone", h.okSpec("gone"), 20*time.Second)
	id := h.get("gone").Status.ActorID
	h.assign("gone", "", 2)
	g.Eventually(h.actor).WithArguments("gone").Should(HaveField("State", "absent"))
	for _, q := range []string{"", "?actorID=" + id} {
		resp, err := http.Get(h.base + "/actors/" + h.ns + "/gone/chain" + q)
		g.Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
		g.Expect(resp.Header.Get("X-Troupe-Actor-ID")).To(Equal(id))
	}
	events, err := h.chain("gone")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(events[len(events)-1].Kind).To(Equal(chain.KindActorStop))
	_, err = os.Stat(filepath.Join(h.dataDir, h.ns, "gone", id, "chain.log"))
	g.Expect(err).NotTo(HaveOccurred())
}

// testEventNotesFitTheAPI: a failure whose message is longer than an
// Event's note may be (1024 bytes), made of 2-byte characters, still gets
// its Warning Event, cut on a character boundary; the status keeps up to
// 4000 bytes of it, valid UTF-8 too.
func (s *suite) testEventNotesFitTheAPI(t *testing.T) {
	g := NewWithT(t)
	h := s.startHost(t)
	long := strings.Repeat("é", 1500) // 3000 bytes
	h.create("wordy", h.probeSpec(literal("FAIL_WITH", "LONG"), literal("LONG", long)))
	h.assign("wordy", h.pod, 1)
	c := h.waitReason("wordy", v1alpha1.ReasonInitFailed, 60*time.Second)
	g.Expect(utf8.ValidString(c.Message)).To(BeTrue())
	g.Expect(c.Message).To(ContainSubstring("cannot connect with password éé"))
	a := h.get("wordy")
	g.Expect(len(a.Status.LastError)).To(BeNumerically("<=", maxMessage))
	g.Expect(utf8.ValidString(a.Status.LastError)).To(BeTrue())
	var note string
	g.Eventually(func() string {
		for _, e := range h.events("wordy") {
			if strings.HasPrefix(e, v1alpha1.EventFailed+": ") {
				note = strings.TrimPrefix(e, v1alpha1.EventFailed+": ")
			}
		}
		return note
	}).WithTimeout(20*time.Second).ShouldNot(BeEmpty(), "the API server took the Failed Event")
	g.Expect(len(note)).To(BeNumerically("<=", maxEventNote))
	g.Expect(len(note)).To(BeNumerically(">", maxEventNote-4), "cut as late as a character allows")
	g.Expect(utf8.ValidString(note)).To(BeTrue())
	g.Expect(note).To(HavePrefix(v1alpha1.ReasonInitFailed + ": init: cannot connect with password é"))
	g.Expect(note).To(HaveSuffix("é…"))
}

// testTickCalls: troupe_host_calls_total counts every call into an actor:
// init, each ok tick, and the tick that failed one.
func (s *suite) testTickCalls(t *testing.T) {
	g := NewWithT(t)
	h := s.startHost(t, func(c *Config) { c.StatusInterval = 200 * time.Millisecond })
	chatty := *h.s.urlSource(testutil.BuildActor(t, "internal/host/testdata/chatty"))
	tick := &metav1.Duration{Duration: 100 * time.Millisecond}
	h.run("ticker", v1alpha1.ActorSpec{Component: chatty, TickInterval: tick,
		Env: []v1alpha1.EnvVar{literal("CHATTER", "1")}}, 60*time.Second)
	// CHATTER=11 records "10", 2 bytes, past maxEventBytes: 1: the first
	// tick fails.
	h.create("tick-fails", v1alpha1.ActorSpec{Component: chatty, TickInterval: tick,
		Env: []v1alpha1.EnvVar{literal("CHATTER", "11")}, Limits: v1alpha1.Limits{MaxEventBytes: 1}})
	h.assign("tick-fails", h.pod, 1)
	h.waitReason("tick-fails", v1alpha1.ReasonTickFailed, 60*time.Second)
	calls := func(export, result string) float64 {
		return promtestutil.ToFloat64(h.host.metrics.calls.WithLabelValues(export, result))
	}
	g.Expect(calls("init", "ok")).To(Equal(2.0))
	g.Eventually(calls).WithArguments("tick", v1alpha1.ReasonTickFailed).Should(Equal(1.0))
	// The ticker's ok ticks reach the metric within a status interval.
	var ticks float64
	g.Eventually(func() float64 {
		ticks = calls("tick", "ok")
		return ticks
	}).WithTimeout(10 * time.Second).Should(BeNumerically(">=", 5))
	g.Expect(h.metrics()).To(ContainSubstring(`troupe_host_calls_total{export="tick",result="ok"}`))
	h.stop()
	g.Expect(calls("tick", "ok")).To(BeNumerically(">=", ticks), "a stop counts the last ticks")
}

// testUnreadableRunRecord: a host-run.json of a newer Troupe fails the run
// with a message naming it, and is left as it was.
func (s *suite) testUnreadableRunRecord(t *testing.T) {
	g := NewWithT(t)
	h := s.startHost(t)
	a := h.create("downgraded", h.okSpec("downgraded"))
	id := uuid.NewString()
	g.Eventually(func() error {
		a = h.get("downgraded")
		a.Status.ActorID = id
		return h.c.Status().Update(h.ctx(), a)
	}).Should(Succeed())
	dir := actordir.Path(h.dataDir, h.ns, "downgraded", id)
	g.Expect(os.MkdirAll(dir, 0o750)).To(Succeed())
	path := filepath.Join(dir, actordir.RunRecordFile)
	const future = `{"version":2,"epoch":1,"outcome":"something new"}`
	g.Expect(os.WriteFile(path, []byte(future), 0o600)).To(Succeed())
	h.assign("downgraded", h.pod, 1)
	c := h.waitReason("downgraded", v1alpha1.ReasonHostError, 30*time.Second)
	g.Expect(c.Message).To(ContainSubstring(path + " has format version 2, which this Troupe does not read (it reads version 1)"))
	g.Expect(h.get("downgraded").Status.Phase).To(Equal(v1alpha1.PhaseFailed))
	raw, err := os.ReadFile(path)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(raw)).To(Equal(future), "never overwritten")
}
