package host

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actorhost"
)

// Mailbox-full Events: an actor whose mailbox has refused messages for
// mailboxFullAfter without draining to half its bounds gets a Warning,
// then at most one more per mailboxFullEvery while it stays so, so that a
// stuck actor does not flood the API server with Events.
const (
	mailboxFullAfter = 10 * time.Second
	mailboxFullEvery = 10 * time.Minute
)

// messageMetrics are the per-actor message metrics: counters the engine
// keeps per actor (actorhost.MessageStats, one atomic add per message) and
// mailbox depths read when /metrics is scraped, so the hot path touches no
// label map; and two host-wide histograms of the times of handled
// messages. An actor's series go when it leaves the host (forget).
type messageMetrics struct {
	received, sent, depth *prometheus.Desc
	delivery, handling    *prometheus.HistogramVec
	// byKind are delivery's and handling's children by kind, resolved
	// once.
	byKind [2][2]prometheus.Observer

	mu     sync.Mutex
	actors map[types.NamespacedName]*actorMessages
	// fullAfter and fullEvery are mailboxFullAfter and mailboxFullEvery
	// (tests shorten them).
	fullAfter, fullEvery time.Duration
	// running lists the host's running actors, for the mailbox gauge.
	running func() map[types.NamespacedName]*actorhost.Actor
}

// actorMessages is what the host keeps of one actor's messages across
// its runs on this host.
type actorMessages struct {
	stats actorhost.MessageStats
	// fullEvent is when the last mailbox-full Event was recorded (guarded
	// by messageMetrics.mu).
	fullEvent time.Time
}

// latencyBuckets span a handler of a few microseconds to a request that
// waited out the longest request timeout (limits.MaxRequestTimeout).
var latencyBuckets = prometheus.ExponentialBuckets(10e-6, 4, 12) // 10µs .. 42s

func newMessageMetrics(running func() map[types.NamespacedName]*actorhost.Actor) *messageMetrics {
	// namespace and actor, as troupe_host_actor_memory_bytes and the
	// actors' own metrics say it, so that they join.
	labels := []string{"namespace", "actor", "kind", "result"}
	m := &messageMetrics{
		received: prometheus.NewDesc("troupe_host_actor_messages_received_total",
			"Messages (kind send or request) an actor received, by result: ok (handled), error (its handler failed or gave a request no response), "+
				"refused (no handler, too large, a request cycle, not running), mailbox_full, rate_limited (its chain budget), timeout (the request expired in its mailbox).",
			labels, nil),
		sent: prometheus.NewDesc("troupe_host_actor_messages_sent_total",
			"Messages (kind send or request) an actor sent, by result as the sender saw it: ok (a send queued, a request answered), error, refused, mailbox_full, rate_limited, timeout.",
			labels, nil),
		depth: prometheus.NewDesc("troupe_host_actor_mailbox_messages",
			"Messages and requests waiting in a running actor's mailbox.",
			[]string{"namespace", "actor"}, nil),
		delivery: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "troupe_host_message_delivery_seconds",
			Help:    "Time from a message's arrival in its receiver's mailbox to the start of its handler, all the host's actors together, by kind (send, request).",
			Buckets: latencyBuckets,
		}, []string{"kind"}),
		handling: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "troupe_host_message_handling_seconds",
			Help:    "Time an actor's handler took with a message (handle-send, handle-request), all the host's actors together, by kind (send, request).",
			Buckets: latencyBuckets,
		}, []string{"kind"}),
		actors:  map[types.NamespacedName]*actorMessages{},
		running: running, fullAfter: mailboxFullAfter, fullEvery: mailboxFullEvery,
	}
	for _, k := range actorhost.MessageKinds {
		m.byKind[0][k] = m.delivery.WithLabelValues(k.String())
		m.byKind[1][k] = m.handling.WithLabelValues(k.String())
	}
	return m
}

// ObserveMessage is the engine's actorhost.MessageTimings.
func (m *messageMetrics) ObserveMessage(kind actorhost.MessageKind, delivery, handling time.Duration) {
	m.byKind[0][kind].Observe(delivery.Seconds())
	m.byKind[1][kind].Observe(handling.Seconds())
}

// statsFor is key's counters, made on its first run here.
func (m *messageMetrics) statsFor(key types.NamespacedName) *actorhost.MessageStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	am := m.actors[key]
	if am == nil {
		am = &actorMessages{}
		m.actors[key] = am
	}
	return &am.stats
}

// forget drops key's series: the actor left the host.
func (m *messageMetrics) forget(key types.NamespacedName) {
	m.mu.Lock()
	delete(m.actors, key)
	m.mu.Unlock()
}

// Describe is prometheus.Collector's.
func (m *messageMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.received
	ch <- m.sent
	ch <- m.depth
	m.delivery.Describe(ch)
	m.handling.Describe(ch)
}

// Collect is prometheus.Collector's: a series per actor, kind and result
// that has counted anything (so an actor costs as many series as the
// outcomes it has seen, not all twelve), and the depth of every running
// actor's mailbox.
func (m *messageMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	for key, am := range m.actors {
		for _, k := range actorhost.MessageKinds {
			for _, r := range actorhost.MessageResults {
				if n := am.stats.Received(k, r); n > 0 {
					ch <- prometheus.MustNewConstMetric(m.received, prometheus.CounterValue, float64(n), key.Namespace, key.Name, k.String(), r.String())
				}
				if n := am.stats.Sent(k, r); n > 0 {
					ch <- prometheus.MustNewConstMetric(m.sent, prometheus.CounterValue, float64(n), key.Namespace, key.Name, k.String(), r.String())
				}
			}
		}
	}
	m.mu.Unlock()
	for key, a := range m.running() {
		ch <- prometheus.MustNewConstMetric(m.depth, prometheus.GaugeValue, float64(a.Mailbox().Messages), key.Namespace, key.Name)
	}
	m.delivery.Collect(ch)
	m.handling.Collect(ch)
}

// mailboxFullNote is the Event's note when key's mailbox has stayed full
// since st.FullSince, or "" when no Event is due now: not full for
// mailboxFullAfter yet, or one was recorded less than mailboxFullEvery
// ago.
func (m *messageMetrics) mailboxFullNote(key types.NamespacedName, st actorhost.MailboxState, now time.Time) string {
	if st.FullSince.IsZero() {
		return ""
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	am := m.actors[key]
	if am == nil || now.Sub(st.FullSince) < m.fullAfter || (!am.fullEvent.IsZero() && now.Sub(am.fullEvent) < m.fullEvery) {
		return ""
	}
	am.fullEvent = now
	refused := am.stats.Received(actorhost.KindSend, actorhost.ResultMailboxFull) + am.stats.Received(actorhost.KindRequest, actorhost.ResultMailboxFull)
	return fmt.Sprintf("the mailbox has been full for %s: %d messages / %d bytes wait (spec.limits.mailboxMessages %d, mailboxBytes %d), "+
		"and %d messages were refused with \"mailbox full\" so far; its handlers are slower than its senders, or stuck. Not repeated for %s while it stays full",
		now.Sub(st.FullSince).Round(time.Second), st.Messages, st.Bytes, st.MaxMessages, st.MaxBytes, refused, m.fullEvery)
}

// checkMailbox records a Warning Event on r's Actor when its mailbox has
// stayed full (mailboxFullNote says when).
func (h *Host) checkMailbox(ctx context.Context, r *run, actor *actorhost.Actor, now time.Time) {
	note := h.msgMetrics.mailboxFullNote(r.key, actor.Mailbox(), now)
	if note == "" {
		return
	}
	var a v1alpha1.Actor
	if err := h.client.Get(ctx, r.key, &a); err != nil {
		h.log.V(1).Info("no mailbox-full Event: reading the Actor", "actor", r.key, "error", err.Error())
		return
	}
	h.event(&a, corev1.EventTypeWarning, v1alpha1.EventMailboxFull, "Deliver", note)
	h.log.Info("an actor's mailbox stays full", "actor", r.key, "epoch", r.epoch)
}
