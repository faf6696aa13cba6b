package actorhost

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// recordedTimings keeps what the engine observed, for the tests.
type recordedTimings struct {
	mu                 sync.Mutex
	delivery, handling map[MessageKind][]time.Duration
}

func (r *recordedTimings) ObserveMessage(k MessageKind, delivery, handling time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delivery[k] = append(r.delivery[k], delivery)
	r.handling[k] = append(r.handling[k], handling)
}

func (r *recordedTimings) count(k MessageKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.handling[k])
}

// histogramTimings observes into Prometheus histograms, as a host does:
// what the message benchmarks measure with (newTestEngine).
type histogramTimings struct {
	delivery, handling [numMessageKinds]prometheus.Observer
}

func newHistogramTimings() *histogramTimings {
	h := &histogramTimings{}
	for _, k := range MessageKinds {
		h.delivery[k] = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "d", Buckets: prometheus.ExponentialBuckets(10e-6, 4, 12)})
		h.handling[k] = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Buckets: prometheus.ExponentialBuckets(10e-6, 4, 12)})
	}
	return h
}

func (h *histogramTimings) ObserveMessage(k MessageKind, delivery, handling time.Duration) {
	h.delivery[k].Observe(delivery.Seconds())
	h.handling[k].Observe(handling.Seconds())
}

// TestMessageStatsAndTimings: every message is counted once, on the
// receiver's side when it is handled or refused and on the sender's when
// its call returns, by kind and result; every handled one is timed.
func TestMessageStatsAndTimings(t *testing.T) {
	rec := &recordedTimings{delivery: map[MessageKind][]time.Duration{}, handling: map[MessageKind][]time.Duration{}}
	e, err := NewEngine(context.Background(), EngineOptions{NoDiskCache: true, SystemInfo: fixedSystemInfo{}, Version: "test", MessageTimings: rec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	ctx := context.Background()
	var aStats, bStats, passiveStats MessageStats
	startMessenger(t, e, "a", ActorConfig{Stats: &aStats})
	startMessenger(t, e, "b", ActorConfig{Stats: &bStats})
	start(t, e, ActorConfig{Name: "passive", Component: compile(t, e, "counter"), Stats: &passiveStats})

	request := func(target string, msg []byte) error {
		_, err := e.Request(ctx, Delivery{From: cli, Target: target, Msg: msg})
		return err
	}
	for _, err := range []error{
		request("a", []byte("e")),        // a: request ok
		request("a", ask("b", "e")),      // a: request ok; a→b: request ok
		request("a", tell("b", "i")),     // a: request ok; a→b: send ok
		request("a", ask("passive", "")), // a→passive: refused (no handler)
		request("a", []byte("n")),        // a: no response
	} {
		if err != nil && !errors.Is(err, ErrNoResponse) {
			t.Fatal(err)
		}
	}
	if err := e.Send(ctx, Delivery{From: cli, Target: "passive", Msg: []byte("i")}); !errors.Is(err, ErrNoHandler) {
		t.Fatalf("send to passive: %v", err)
	}
	// The send a made to b is counted once b has handled it: a request
	// queued behind it says when.
	if err := request("b", []byte("e")); err != nil {
		t.Fatal(err)
	}

	type count struct {
		s    *MessageStats
		in   bool
		k    MessageKind
		r    MessageResult
		want uint64
	}
	for name, c := range map[string]count{
		"a received requests ok":        {&aStats, true, KindRequest, ResultOK, 4},
		"a received no response":        {&aStats, true, KindRequest, ResultError, 1},
		"a sent requests ok":            {&aStats, false, KindRequest, ResultOK, 1},
		"a sent requests refused":       {&aStats, false, KindRequest, ResultRefused, 1},
		"a sent sends ok":               {&aStats, false, KindSend, ResultOK, 1},
		"b received requests ok":        {&bStats, true, KindRequest, ResultOK, 2},
		"b received sends ok":           {&bStats, true, KindSend, ResultOK, 1},
		"b sent nothing":                {&bStats, false, KindRequest, ResultOK, 0},
		"passive refused a request":     {&passiveStats, true, KindRequest, ResultRefused, 1},
		"passive refused a send":        {&passiveStats, true, KindSend, ResultRefused, 1},
		"passive handled nothing":       {&passiveStats, true, KindSend, ResultOK, 0},
		"a received no mailbox refusal": {&aStats, true, KindSend, ResultMailboxFull, 0},
	} {
		got := c.s.Sent(c.k, c.r)
		if c.in {
			got = c.s.Received(c.k, c.r)
		}
		if got != c.want {
			t.Errorf("%s: %d, want %d", name, got, c.want)
		}
	}
	// Handled: a's five requests, b's two and its send.
	if got := rec.count(KindRequest); got != 7 {
		t.Errorf("%d requests timed, want 7", got)
	}
	if got := rec.count(KindSend); got != 1 {
		t.Errorf("%d sends timed, want 1", got)
	}
	rec.mu.Lock()
	for k, ds := range rec.handling {
		for i, d := range ds {
			if d <= 0 || rec.delivery[k][i] < 0 {
				t.Errorf("%s %d: delivery %s, handling %s", k, i, rec.delivery[k][i], d)
			}
		}
	}
	rec.mu.Unlock()
}

// TestMailboxFullSince: a full mailbox that refused work says since when,
// until it drains to half its bounds; the refusals are counted, and so are
// the messages left in it when the run ends.
func TestMailboxFullSince(t *testing.T) {
	e, _ := newTestEngine(t)
	ctx := context.Background()
	var stats MessageStats
	full := startMessenger(t, e, "full", ActorConfig{MailboxMessages: 4, CallTimeout: time.Second, Stats: &stats})
	if st := full.Mailbox(); !st.FullSince.IsZero() || st.MaxMessages != 4 {
		t.Fatalf("an idle mailbox: %+v", st)
	}
	// A request that loops until its call deadline holds the actor.
	blocker := make(chan error, 1)
	go func() {
		_, err := e.Request(ctx, Delivery{From: cli, Target: "full", Msg: []byte("L")})
		blocker <- err
	}()
	waitFor(t, "full to be busy", func() bool { return full.Mailbox().Messages == 0 && len(full.callLock) == 1 })
	before := time.Now()
	refused := 0
	for i := range 10 {
		err := e.Send(ctx, Delivery{From: cli, Target: "full", Msg: []byte("x")})
		switch {
		case i < 4 && err != nil:
			t.Fatalf("send %d: %v", i, err)
		case i >= 4 && !errors.Is(err, ErrMailboxFull):
			t.Fatalf("send %d: %v, want mailbox full", i, err)
		case err != nil:
			refused++
		}
	}
	st := full.Mailbox()
	if st.Messages != 4 || st.FullSince.Before(before) || time.Since(st.FullSince) > time.Minute {
		t.Fatalf("a full mailbox: %+v", st)
	}
	if got := stats.Received(KindSend, ResultMailboxFull); got != uint64(refused) {
		t.Fatalf("%d refusals counted, want %d", got, refused)
	}
	// The loop fails the actor at its call deadline: the four queued
	// sends are answered, and counted, as refused (not running).
	if err := <-blocker; err == nil {
		t.Fatal("the looping request returned no error")
	}
	waitFor(t, "the queued sends to be counted", func() bool { return stats.Received(KindSend, ResultRefused) == 4 })
	if st := full.Mailbox(); !st.FullSince.IsZero() || st.Messages != 0 {
		t.Fatalf("the mailbox of an ended run: %+v", st)
	}
	if got := stats.Received(KindRequest, ResultError); got != 1 {
		t.Fatalf("the failed handler's request counted %d times as an error", got)
	}
}

// TestMailboxDrainedToHalfIsNotFull: fullSince clears once the drain
// brings the mailbox to half its bounds.
func TestMailboxDrainedToHalfIsNotFull(t *testing.T) {
	m := &mailbox{maxItems: 4, maxBytes: 1 << 20, pool: &drainPool{}, owner: &Actor{}}
	m.draining = true // no drain runs here: the test pops
	m.drains.Add(1)
	for i := range 5 {
		full, _ := m.push(&work{kind: workSend, msg: []byte(fmt.Sprint(i))})
		if full != (i == 4) {
			t.Fatalf("push %d: full %v", i, full)
		}
	}
	if m.fullSince.IsZero() {
		t.Fatal("a refusal did not mark the mailbox full")
	}
	m.pop()
	if m.fullSince.IsZero() {
		t.Fatal("three of four left: still full")
	}
	m.pop()
	if !m.fullSince.IsZero() {
		t.Fatal("two of four left (half): no longer full")
	}
}

// BenchmarkMessageAccounting is what the metrics add to one send on its
// path, alone: three monotonic clock reads (queued, handler start, handler
// end; a request reuses two it made anyway), the receiver's counter and
// the two histograms (a sender actor's
// counter is one atomic add more). BenchmarkSend and BenchmarkRequest
// measure it inside a message's whole cost, where the machine's noise
// hides it; this says how much there is to hide.
func BenchmarkMessageAccounting(b *testing.B) {
	var s MessageStats
	h := newHistogramTimings()
	b.ReportAllocs()
	for b.Loop() {
		queued := monoNow()
		began := monoNow()
		s.in[KindSend][ResultOf(nil)].Add(1)
		h.ObserveMessage(KindSend, began-queued, monoNow()-began)
	}
}
