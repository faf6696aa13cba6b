package host

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actorhost"
)

// TestMailboxFullNote: the Event is due once the mailbox has stayed full
// for mailboxFullAfter, then again only after mailboxFullEvery.
func TestMailboxFullNote(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "a"}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	full := actorhost.MailboxState{Messages: 4, Bytes: 40, MaxMessages: 4, MaxBytes: 1 << 20, FullSince: t0}
	steps := []struct {
		what string
		st   actorhost.MailboxState
		at   time.Time
		due  bool
	}{
		{"not full", actorhost.MailboxState{Messages: 1, MaxMessages: 4}, t0, false},
		{"full for a moment", full, t0.Add(time.Second), false},
		{"full for mailboxFullAfter", full, t0.Add(mailboxFullAfter), true},
		{"still full, just after the Event", full, t0.Add(mailboxFullAfter + time.Minute), false},
		{"still full, mailboxFullEvery later", full, t0.Add(mailboxFullAfter + mailboxFullEvery), true},
		{"drained, then full again for a moment", actorhost.MailboxState{FullSince: t0.Add(3 * mailboxFullEvery)}, t0.Add(3*mailboxFullEvery + time.Second), false},
		{"full again for mailboxFullAfter", actorhost.MailboxState{FullSince: t0.Add(3 * mailboxFullEvery)}, t0.Add(3*mailboxFullEvery + mailboxFullAfter), true},
	}
	m := newMessageMetrics(func() map[types.NamespacedName]*actorhost.Actor { return nil })
	m.statsFor(key)
	for _, s := range steps {
		note := m.mailboxFullNote(key, s.st, s.at)
		if (note != "") != s.due {
			t.Fatalf("%s: note %q, due %v", s.what, note, s.due)
		}
		if s.due && !strings.Contains(note, "has been full for") {
			t.Fatalf("%s: note %q", s.what, note)
		}
	}
	// An actor that left the host gets no Event.
	m.forget(key)
	if note := m.mailboxFullNote(key, full, t0.Add(time.Hour)); note != "" {
		t.Fatalf("a forgotten actor: %q", note)
	}
}

// testMessageMetrics: a host exports each actor's messages in and out,
// its mailbox depth and the handling histograms, all passing the
// Prometheus linter; a mailbox that stays full gets one Warning Event;
// an actor's series go when it leaves the host.
func (s *suite) testMessageMetrics(t *testing.T) {
	g := NewWithT(t)
	h := s.startHost(t)
	h.host.msgMetrics.mu.Lock()
	h.host.msgMetrics.fullAfter = 500 * time.Millisecond
	h.host.msgMetrics.mu.Unlock()
	wasm, err := os.ReadFile(filepath.Join("..", "actorhost", "testdata", "messenger.wasm"))
	g.Expect(err).NotTo(HaveOccurred())
	src := h.s.urlSource(wasm)
	h.run("a", v1alpha1.ActorSpec{Component: *src}, 60*time.Second)
	h.run("b", v1alpha1.ActorSpec{Component: *src, Limits: v1alpha1.Limits{
		MailboxMessages: 2, CallTimeout: &metav1.Duration{Duration: 8 * time.Second}}}, 60*time.Second)

	ctx := h.ctx()
	ask := func(target, rest string) []byte { return append([]byte{'a', byte(len(target))}, target+rest...) }
	resp, err := h.host.engine.Request(ctx, actorhost.Delivery{From: actorhost.Sender{External: "test"}, Target: h.ns + "/a", Msg: ask("b", "e")})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(resp)).To(Equal("e"))

	series := func(metric, name, kind, result string) string {
		return fmt.Sprintf(`%s{actor=%q,kind=%q,namespace=%q,result=%q} 1`, metric, name, kind, h.ns, result)
	}
	g.Eventually(h.metrics).Should(And(
		ContainSubstring(series("troupe_host_actor_messages_received_total", "a", "request", "ok")),
		ContainSubstring(series("troupe_host_actor_messages_sent_total", "a", "request", "ok")),
		ContainSubstring(series("troupe_host_actor_messages_received_total", "b", "request", "ok")),
		ContainSubstring(fmt.Sprintf(`troupe_host_actor_mailbox_messages{actor="b",namespace=%q} 0`, h.ns)),
		ContainSubstring(`troupe_host_message_handling_seconds_count{kind="request"} 2`),
		ContainSubstring(`troupe_host_message_delivery_seconds_bucket{kind="request",le="+Inf"} 2`),
	))
	g.Expect(h.metrics()).NotTo(ContainSubstring(series("troupe_host_actor_messages_sent_total", "b", "request", "ok")), "b sent nothing")
	problems, err := promtestutil.GatherAndLint(h.host.metrics.registry)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(problems).To(BeEmpty())

	// b's handler loops until its call deadline: two sends fill its
	// mailbox, the next ones are refused, and it stays full past
	// fullAfter: one Warning.
	looped := make(chan error, 1)
	go func() {
		_, err := h.host.engine.Request(context.Background(), actorhost.Delivery{From: actorhost.Sender{External: "test"}, Target: h.ns + "/b", Msg: []byte("L")})
		looped <- err
	}()
	send := func() error {
		return h.host.engine.Send(ctx, actorhost.Delivery{From: actorhost.Sender{External: "test"}, Target: h.ns + "/b", Msg: []byte("x")})
	}
	// The senders keep at it (until the loop is taken from the mailbox it
	// is one of the two items, and the mailbox drains to half once).
	g.Eventually(func() string { _ = send(); return h.metrics() }).Should(And(
		MatchRegexp(`troupe_host_actor_messages_received_total\{actor="b",kind="send",namespace="%s",result="mailbox_full"\} [1-9]`, h.ns),
		ContainSubstring(fmt.Sprintf(`troupe_host_actor_mailbox_messages{actor="b",namespace=%q} 2`, h.ns))))
	g.Eventually(func() []string { _ = send(); return h.events("b") }).WithTimeout(20 * time.Second).
		Should(ContainElement(ContainSubstring(v1alpha1.EventMailboxFull + ": the mailbox has been full for")))
	g.Expect(<-looped).To(HaveOccurred())
	fullEvents := 0
	for _, e := range h.events("b") {
		if strings.HasPrefix(e, v1alpha1.EventMailboxFull+":") {
			fullEvents++
		}
	}
	g.Expect(fullEvents).To(Equal(1), "one Event, however long it stayed full")

	// a leaves the host: its series go, b's stay.
	h.assign("a", "", 2)
	g.Eventually(h.metrics).ShouldNot(ContainSubstring(`actor="a"`))
	g.Expect(h.metrics()).To(ContainSubstring(`actor="b"`))
}
