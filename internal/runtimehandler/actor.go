package runtimehandler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/tetratelabs/wazero/api"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/diskbudget"
	"github.com/troupe-dev/troupe/internal/limits"
	"github.com/troupe-dev/troupe/internal/version"
)

// Recorder appends events to an actor's state chain; *chain.Chain
// satisfies it. Append must copy data: the handler reuses its buffer.
type Recorder interface {
	Append(kind chain.Kind, op string, data []byte) (chain.Hash, error)
}

// ActorOptions describe one actor to the runtime handler.
type ActorOptions struct {
	// ID is the actor's stable id (status.actorID); Name its manifest name;
	// Namespace its Kubernetes namespace ("" in local mode).
	ID, Name, Namespace string
	// Config holds the handler's limits; the zero Config means DefaultConfig.
	Config Config
	// Env serves get-env; nil serves nothing. Its SecretValues are
	// scrubbed from the actor's first call on: the guest may have kept a
	// secret in its saved state and log it before reading it again.
	Env EnvSource
	// SystemInfo serves get-system-info; nil uses a process-wide
	// NewNodeSystemInfo("", 0).
	SystemInfo SystemInfoSource
	// Chain records every call. Required.
	Chain Recorder
	// Budget, when set, admits every event before it is appended: a call
	// waits for it within its deadline, and one it refuses traps with the
	// *diskbudget.Error, so that nothing the guest is told succeeded goes
	// unrecorded. nil: no budget.
	Budget *diskbudget.Actor
	// Deadline returns the deadline of the call in progress (zero: none),
	// for what the guest writes outside a runtime call, to WASI stdout and
	// stderr, which has no context; nil: none.
	Deadline func() time.Time
	// Metrics exports record-metric values; nil: metrics are validated and
	// chained but not exported.
	Metrics *MetricsRegistry
	// Logger receives the actor's log lines, tagged with namespace, name and
	// actor id.
	Logger logr.Logger
	// Version is what get-theater-version returns; "" uses the build's.
	Version string
	// Now is the clock; nil uses time.Now.
	Now func() time.Time
	// Messenger delivers what the actor sends (message-server-host); nil
	// answers every send and request with an error.
	Messenger Messenger
	// MaxMessageBytes bounds a message the actor sends and a response it
	// gets; 0 is limits.DefaultMaxMessageBytes.
	MaxMessageBytes int
}

// Actor is the runtime handler's per-actor state. Calls into one actor
// instance never overlap (the engine runs an actor on one goroutine at a
// time), so the call path uses no locks; only the fields the engine reads
// from outside a call (shutdown) are guarded.
type Actor struct {
	id, name, namespace, version string
	cfg                          Config
	env                          EnvSource
	sys                          SystemInfoSource
	rec                          Recorder
	budget                       *diskbudget.Actor
	deadline                     func() time.Time
	metrics                      *MetricsRegistry
	log                          logr.Logger
	now                          func() time.Time
	messenger                    Messenger
	maxMessage                   int

	// Call-path state, touched only by the goroutine running the actor.
	fields       eventFields       // event data builder, reused by every call
	metricNames  map[string]string // distinct names recorded (name → its own copy), for the cap
	inRealloc    bool              // inside the guest's cabi_realloc
	memMod       api.Module        // module whose memory is cached
	mem          api.Memory
	reallocMod   api.Module // module whose cabi_realloc is cached
	realloc      api.Function
	reallocStack [4]uint64
	areaMod      api.Module // module whose result area is resolved
	area         resultArea
	noResultArea bool // tests: ignore the guest's result area (the canonical path)

	// secrets are the secret values the actor knows, scrubbed from guest
	// text before it is recorded or logged; nil while there is none, so an
	// actor without secrets pays a nil check. Read from the call path and
	// the engine; secretsMu orders the writers.
	secrets   atomic.Pointer[secretSet]
	secretsMu sync.Mutex

	mu              sync.Mutex
	shutdown        bool
	shutdownHasData bool
	shutdownData    []byte
	writers         []*logWriter
	// streams are the writers of WASI 0.2's stdout and stderr, by handle
	// (wasi02.go), made on first use.
	streams [3]io.Writer
	closed  bool
}

// defaultSystemInfo is shared by actors created without a SystemInfo
// source, so that they share its cache.
var defaultSystemInfo = sync.OnceValue(func() SystemInfoSource { return NewNodeSystemInfo("", 0) })

// NewActor validates o and returns the actor's handler state. Bind it to
// the contexts of calls into the actor with WithActor.
func NewActor(o ActorOptions) (*Actor, error) {
	if o.Chain == nil {
		return nil, errors.New("runtime handler: ActorOptions.Chain is required: every call is recorded")
	}
	cfg := o.Config
	if cfg == (Config{}) {
		cfg = DefaultConfig()
	} else if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Actor{
		id: o.ID, name: o.Name, namespace: o.Namespace, version: o.Version,
		cfg: cfg, env: o.Env, sys: o.SystemInfo, rec: o.Chain, budget: o.Budget, deadline: o.Deadline, metrics: o.Metrics,
		log:         o.Logger.WithValues("namespace", o.Namespace, "name", o.Name, "actorID", o.ID),
		now:         o.Now,
		metricNames: map[string]string{},
		messenger:   o.Messenger,
		maxMessage:  o.MaxMessageBytes,
	}
	if a.maxMessage == 0 {
		a.maxMessage = limits.DefaultMaxMessageBytes
	} else if err := limits.CheckMaxMessageBytes(int64(a.maxMessage)); err != nil {
		return nil, fmt.Errorf("runtime handler: %w", err)
	}
	if a.env == nil {
		a.env = MapEnv(nil)
	}
	if known := a.env.SecretValues(); len(known) > 0 {
		a.secrets.Store((*secretSet)(nil).with(known...))
	}
	if a.sys == nil {
		a.sys = defaultSystemInfo()
	}
	if a.version == "" {
		a.version = version.String()
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a, nil
}

// eventFields is the event data builder; an alias keeps the call sites short.
type eventFields = chain.Fields

type actorKey struct{}

// WithActor binds a to ctx: the runtime functions a guest calls during a
// call made with the returned context serve and record for a.
func WithActor(ctx context.Context, a *Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// Shutdown reports whether the guest called shutdown, and the data it
// passed (hasData is false for none). The engine checks it after every call
// and stops the actor when requested.
func (a *Actor) Shutdown() (data []byte, hasData, requested bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.shutdownData, a.shutdownHasData, a.shutdown
}

// requestShutdown marks the actor; false if it already was.
func (a *Actor) requestShutdown(data []byte, hasData bool) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.shutdown {
		return false
	}
	a.shutdown, a.shutdownHasData = true, hasData
	if hasData {
		a.shutdownData = append([]byte{}, data...)
	}
	return true
}

// Close flushes the partial last lines of the actor's LogWriters and drops
// its metrics from the registry. Call it once the actor has stopped,
// before closing its chain.
func (a *Actor) Close() {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.closed = true
	writers := a.writers
	a.writers = nil
	a.mu.Unlock()
	for _, w := range writers {
		if err := w.flush(); err != nil {
			a.log.Error(err, "flushing the actor's last output line")
		}
	}
	if a.metrics != nil {
		a.metrics.drop(a)
	}
}

// ID returns the actor's id.
func (a *Actor) ID() string { return a.id }

// Config returns the actor's limits.
func (a *Actor) Config() Config { return a.cfg }

// eventData starts a new event's data in the actor's reused builder.
func (a *Actor) eventData() *eventFields {
	a.fields.Reset()
	return &a.fields
}
