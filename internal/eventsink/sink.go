package eventsink

import (
	"context"
	"fmt"

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
	b    events.EventBroadcaster
	stop context.CancelFunc
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
	s := &Sink{b: events.NewBroadcaster(&events.EventSinkImpl{Interface: cl})}
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

// Start waits for ctx to end, then stops the sink; Events still waiting
// for the rate limiter then are dropped, as a stopping manager's were.
func (s *Sink) Start(ctx context.Context) error {
	<-ctx.Done()
	s.stop()
	s.b.Shutdown()
	return nil
}

// NeedLeaderElection is false: a replica that is not the leader records no
// Events, and one that loses the lead still sends those it recorded.
func (s *Sink) NeedLeaderElection() bool { return false }
