package eventsink

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	eventsv1 "k8s.io/api/events/v1"

	"k8s.io/apimachinery/pkg/runtime"
	eventsv1client "k8s.io/client-go/kubernetes/typed/events/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
)

// Defaults for Options: the Events of one actor's life (a handful) go at
// once; a burst of 100 actors' (100 Placed from the manager, 100 Started
// from the hosts, each sink its own) drains in about 4 s.
const (
	DefaultQPS   = 20
	DefaultBurst = 25
)

// Options size the sink's client.
type Options struct {
	// QPS and Burst rate-limit the Event writes; 0 is DefaultQPS and
	// DefaultBurst.
	QPS   float32
	Burst int
}

// Sink is an Event broadcaster whose writes have their own rate limit. It
// sends from New on (an Event recorded before a watcher of the broadcaster
// exists would be lost) and is a manager.Runnable: it stops when the
// context given to Start ends.
type Sink struct {
	b        events.EventBroadcaster
	stop     context.CancelFunc
	inflight *inflight
	// Grace bounds how long Start, once its context ended, waits for the
	// Events still queued to be written before it stops (DefaultGrace).
	Grace time.Duration
}

// DefaultGrace is how long a stopping sink lets its queue drain: what a
// host records while it stops its actors is sent, within reason.
const DefaultGrace = 5 * time.Second

// inflight is the sink's writer, counting the writes under way (those
// waiting for the rate limiter included).
type inflight struct {
	events.EventSink
	n atomic.Int64
}

func (f *inflight) Create(ctx context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	f.n.Add(1)
	defer f.n.Add(-1)
	return f.EventSink.Create(ctx, e)
}

func (f *inflight) Update(ctx context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	f.n.Add(1)
	defer f.n.Add(-1)
	return f.EventSink.Update(ctx, e)
}

func (f *inflight) Patch(ctx context.Context, old *eventsv1.Event, data []byte) (*eventsv1.Event, error) {
	f.n.Add(1)
	defer f.n.Add(-1)
	return f.EventSink.Patch(ctx, old, data)
}

// New makes a sink writing Events with a copy of cfg rate-limited by opts;
// cfg's transport wrappers (a request counter in tests) are kept. It
// sends until Start's context ends.
func New(cfg *rest.Config, opts Options) (*Sink, error) {
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = opts.QPS, opts.Burst
	if c.QPS == 0 {
		c.QPS = DefaultQPS
	}
	if c.Burst == 0 {
		c.Burst = DefaultBurst
	}
	cl, err := eventsv1client.NewForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("creating the Event client: %w", err)
	}
	f := &inflight{EventSink: &events.EventSinkImpl{Interface: cl}}
	s := &Sink{b: events.NewBroadcaster(f), inflight: f, Grace: DefaultGrace}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.b.StartRecordingToSinkWithContext(ctx); err != nil {
		cancel()
		return nil, fmt.Errorf("starting the Event sink: %w", err)
	}
	s.stop = cancel
	return s, nil
}

// Recorder returns a recorder of Events reported by controller.
func (s *Sink) Recorder(scheme *runtime.Scheme, controller string) events.EventRecorder {
	return s.b.NewRecorder(scheme, controller)
}

// Start waits for ctx to end, then for the Events under way to be written
// (at most Grace), then stops the sink; what is still queued then is
// dropped.
func (s *Sink) Start(ctx context.Context) error {
	<-ctx.Done()
	deadline := time.Now().Add(s.Grace)
	for s.inflight.n.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s.stop()
	s.b.Shutdown()
	return nil
}

// NeedLeaderElection is false: a replica that is not the leader records no
// Events, and one that loses the lead still sends those it recorded.
func (s *Sink) NeedLeaderElection() bool { return false }
