package controllers

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/envtestutil"
	"github.com/troupe-dev/troupe/internal/textutil"
)

// testOneEventPerFact: a failure is the host's to record, the manager
// records only the restart it decides; a host's death gives each of its
// actors one NoHost Event for the whole wait, however often the reasons
// change meanwhile (with hundreds of actors per host, one per change was a
// flood).
func testOneEventPerFact(t *testing.T, env *envtestutil.Env) {
	h := newHarness(t, env, harnessOptions{})
	g := NewWithT(t)
	poolA := map[string]string{"pool": "a"}

	one := h.host("host-1", h.node("n1", poolA), 10)
	h.actor("crashy", func(a *v1alpha1.Actor) { a.Spec.NodeSelector = poolA })
	a := h.placed("crashy")
	h.report("crashy", "host-1", a.Status.Epoch, running)
	h.report("crashy", "host-1", a.Status.Epoch, failed(v1alpha1.ReasonTrapped, "wasm trap: unreachable"))
	h.g.Eventually(func() (int64, error) { x, err := h.get("crashy"); return x.Status.Epoch, err }).Should(Equal(a.Status.Epoch + 1))
	h.settled("crashy")
	g.Expect(h.emitted.notes("crashy", v1alpha1.EventFailed)).To(BeEmpty(), "the host records the failure, not the manager")
	g.Expect(h.emitted.notes("crashy", v1alpha1.EventRestarting)).To(HaveLen(1))

	// Episode one: host-1 shuts down, nothing else fits.
	names := []string{"w0", "w1", "w2"}
	for _, n := range names {
		h.actor(n, func(a *v1alpha1.Actor) { a.Spec.NodeSelector = poolA })
		x := h.placed(n)
		h.report(n, "host-1", x.Status.Epoch, running)
	}
	one.shutdown()
	waitNoHost := func(msg string) {
		t.Helper()
		h.g.Eventually(func(g Gomega) {
			for _, n := range names {
				x, err := h.get(n)
				g.Expect(err).NotTo(HaveOccurred())
				c := condition(x, v1alpha1.ConditionScheduled)
				g.Expect(c.Reason).To(Equal(v1alpha1.ReasonNoHost), n)
				g.Expect(c.Message).To(ContainSubstring(msg), n)
			}
		}).Should(Succeed())
	}
	// Once the manager is done with each, it has recorded want NoHost
	// Events about it, the last one saying why.
	expectNoHostEvents := func(want int, last string) {
		t.Helper()
		for _, n := range names {
			h.settled(n)
			notes := h.emitted.notes(n, v1alpha1.EventNoHost)
			g.Expect(notes).To(HaveLen(want), "%s: one NoHost per wait", n)
			g.Expect(notes[want-1]).To(ContainSubstring(last), n)
		}
	}
	waitNoHost("no host lease exists")
	// The reasons change while they wait: a host comes that doesn't fit.
	h.host("host-b", h.node("nb", map[string]string{"pool": "b"}), 10)
	waitNoHost("0/1 hosts available: 1 node didn't match nodeSelector")
	expectNoHostEvents(1, "host host-1 can't keep the actor (its Lease is gone)")
	for _, n := range names {
		// The API server has one Event, not a series.
		var list eventsv1.EventList
		g.Expect(h.c.List(context.Background(), &list, client.InNamespace(h.ns))).To(Succeed())
		var onAPI []eventsv1.Event
		for _, e := range list.Items {
			if e.Regarding.Name == n && e.Reason == v1alpha1.EventNoHost {
				onAPI = append(onAPI, e)
			}
		}
		g.Expect(onAPI).To(HaveLen(1), n)
		g.Expect(onAPI[0].Series).To(BeNil(), n)
	}

	// A host that fits ends the episode; its death starts another.
	c := h.host("host-c", h.node("nc", poolA), 10)
	for _, n := range names {
		x := h.placed(n)
		h.report(n, "host-c", x.Status.Epoch, running)
	}
	c.die()
	waitNoHost("lease expired")
	expectNoHostEvents(2, "host host-c can't keep the actor (its lease expired")
}

// testNoHostGrace: a host pod that is replaced (a rolling update, a deleted
// pod) comes back within seconds; its actors wait for it without a Warning
// each (a node's hundreds of actors made a burst of them), and are moved to
// the new pod with one Moved each. A wait that outlasts the grace is
// reported once, saying how long it has lasted and which host was lost.
func testNoHostGrace(t *testing.T, env *envtestutil.Env) {
	g := NewWithT(t)
	names := []string{"r0", "r1", "r2"}
	run := func(h *harness, host string) {
		for _, n := range names {
			x := h.placed(n)
			h.report(n, host, x.Status.Epoch, running)
		}
	}
	waitNoHost := func(h *harness) {
		for _, n := range names {
			h.eventually(n, func(g Gomega, x *v1alpha1.Actor) {
				g.Expect(condition(x, v1alpha1.ConditionScheduled).Reason).To(Equal(v1alpha1.ReasonNoHost))
			})
		}
	}

	// The replacement comes within the grace: no Warning at all.
	h := newHarness(t, env, harnessOptions{tune: func(r *ActorReconciler) { r.NoHostGrace = time.Minute }})
	node := h.node("n1", nil)
	old := h.host("host-old", node, 10)
	for _, n := range names {
		h.actor(n)
	}
	run(h, "host-old")
	old.shutdown()
	waitNoHost(h)
	h.host("host-new", node, 10)
	run(h, "host-new")
	for _, n := range names {
		h.settled(n)
		g.Expect(h.emitted.notes(n, v1alpha1.EventNoHost)).To(BeEmpty(), "%s: a replaced host is no alarm", n)
		g.Expect(h.emitted.notes(n, v1alpha1.EventMoved)).To(HaveLen(1), n)
	}

	// No replacement: one Warning per actor once the grace is over.
	const grace = time.Second
	h = newHarness(t, env, harnessOptions{tune: func(r *ActorReconciler) { r.NoHostGrace = grace }})
	node = h.node("n1", nil)
	gone := h.host("host-gone", node, 10)
	for _, n := range names {
		h.actor(n)
	}
	run(h, "host-gone")
	gone.shutdown()
	waitNoHost(h)
	for _, n := range names {
		h.g.Eventually(func() []string { return h.emitted.notes(n, v1alpha1.EventNoHost) }).Should(HaveLen(1), n)
		h.settled(n)
		notes := h.emitted.notes(n, v1alpha1.EventNoHost)
		g.Expect(notes).To(HaveLen(1), "%s: one Warning per wait", n)
		g.Expect(notes[0]).To(MatchRegexp(`^no host for [0-9]+s: host host-gone can't keep the actor \(its Lease is gone\); `), n)
	}
}

// testEventNotesOnTheAPIServer: an actor whose failure message is 5000
// bytes of multibyte text still gets its Event, cut to what the API server
// takes, on a rune boundary.
func testEventNotesOnTheAPIServer(t *testing.T, env *envtestutil.Env) {
	h := newHarness(t, env, harnessOptions{})
	g := NewWithT(t)
	ctx := context.Background()

	// The limit is the API server's: a longer note is refused (client-go's
	// recorder would log that and drop the Event).
	probe := func(note string) error {
		return h.c.Create(ctx, &eventsv1.Event{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-", Namespace: h.ns},
			EventTime:  metav1.NowMicro(), Type: corev1.EventTypeNormal, Reason: "Probe", Action: "Probe",
			ReportingController: "test", ReportingInstance: "test",
			Regarding: corev1.ObjectReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Actor", Namespace: h.ns, Name: "probe"},
			Note:      note,
		})
	}
	g.Expect(probe(strings.Repeat("x", v1alpha1.MaxEventNoteBytes))).To(Succeed())
	err := probe(strings.Repeat("x", v1alpha1.MaxEventNoteBytes+1))
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "a note of %d bytes: %v", v1alpha1.MaxEventNoteBytes+1, err)

	h.host("host-1", h.node("n1", nil), 10)
	h.actor("verbose")
	a := h.placed("verbose")
	h.report("verbose", "host-1", a.Status.Epoch, running)
	long := strings.Repeat("ü", 2500) // 5000 bytes
	h.report("verbose", "host-1", a.Status.Epoch, func(a *v1alpha1.Actor) {
		failed(v1alpha1.ReasonTrapped, long)(a)
		a.Status.LastError = textutil.Truncate(long, 4000) // as the host cuts it
	})
	var note string
	h.g.Eventually(func(g Gomega) {
		var list eventsv1.EventList
		g.Expect(h.c.List(ctx, &list, client.InNamespace(h.ns))).To(Succeed())
		found := false
		for _, e := range list.Items {
			if e.Regarding.Name == "verbose" && e.Reason == v1alpha1.EventRestarting && e.ReportingController == ControllerName {
				found, note = true, e.Note
			}
		}
		g.Expect(found).To(BeTrue(), "no Restarting Event")
	}).Should(Succeed())
	g.Expect(utf8.ValidString(note)).To(BeTrue(), "note is not valid UTF-8")
	g.Expect(len(note)).To(BeNumerically("<=", v1alpha1.MaxEventNoteBytes))
	g.Expect(len(note)).To(BeNumerically(">", v1alpha1.MaxEventNoteBytes-4), "cut at the limit, not before")
	g.Expect(note).To(HavePrefix("restart 1 on host host-1 (epoch 2) after its backoff; it had stopped: üü"))
	g.Expect(note).To(HaveSuffix(textutil.Ellipsis))

	// And every note the manager wrote fits.
	var list eventsv1.EventList
	g.Expect(h.c.List(ctx, &list, client.InNamespace(h.ns))).To(Succeed())
	for _, e := range list.Items {
		g.Expect(len(e.Note)).To(BeNumerically("<=", v1alpha1.MaxEventNoteBytes), "%s %s", e.Reason, e.Regarding.Name)
	}
}
