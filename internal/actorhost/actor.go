package actorhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/tetratelabs/wazero/api"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/diskbudget"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
)

// maxInitErrorBytes bounds the part of an init or tick error string that
// is kept.
const maxInitErrorBytes = 4 << 10

// ChainLink is a head recorded elsewhere that a new chain continues (an
// actor that moved to another host starts a segment linked to it).
type ChainLink struct {
	Head   chain.Hash
	Length uint64
	// Node is where the chain up to Head was written, when known: the node
	// that keeps the actor's earlier events and the state saved with them.
	Node string
	// Restored, when set, is the state the actor had at Head, read from
	// an archive (docs/archive.md): the run resumes from it exactly as a
	// restart on the same node resumes from its saved state (init gets
	// it), and the SegmentStart says what was restored. Start refuses one
	// whose bytes do not have the digest it names.
	Restored *RestoredState
	// Lost, when set, is a later head this segment does not continue: the
	// events from Length up to Lost.Length (or, when Lost is not after
	// Head, the ones Lost ends) were written on Lost.Node and are not
	// part of the history any more (the archive was behind the head the
	// cluster last knew). The SegmentStart names the gap.
	Lost *ChainLink
}

// RestoresState reports whether a segment starting from c resumes a
// state the actor had (restored from the archive).
func (c *ChainLink) RestoresState() bool { return c.Restored != nil && c.Restored.Event != nil }

// StateLost reports whether a segment starting from c starts without the
// state the actor had at the last head the cluster knew: init gets the
// initial state although the actor had a history (no archive, or one
// that records no state and lost events after its head).
func (c *ChainLink) StateLost() bool {
	return c.Length > 0 && !c.RestoresState() && (c.Restored == nil || c.Lost != nil)
}

// RestoredState is an actor's state as an archive holds it, checked
// against the chain by the archive's reader (archive.Restore).
type RestoredState struct {
	// Epoch is the archive's epoch whose segment ends at the link's head.
	Epoch int64
	// Event is the seq of the event that recorded the state; nil when no
	// event of the history records one (init gets InitialState).
	Event *uint64
	// HasState, State: the state, as init and tick returned it.
	HasState bool
	State    []byte
	// Sha256 (hex) is the digest the chain records for State at Event.
	Sha256 string
}

// check refuses a restored state that is not what it says it is, or not
// one the chain up to a head of length events can record.
func (r *RestoredState) check(length uint64, maxState int) error {
	switch {
	case r.Event == nil && (r.HasState || len(r.State) > 0 || r.Sha256 != ""):
		return errors.New("a restored state without the event that records it")
	case r.Event != nil && *r.Event >= length:
		return fmt.Errorf("the restored state's event %d is not before the head it continues (%d events)", *r.Event, length)
	case !r.HasState && (len(r.State) > 0 || r.Sha256 != ""):
		return errors.New("a restored state that says it has none carries bytes or a digest")
	case !r.HasState:
		return nil
	case len(r.State) > maxState:
		return fmt.Errorf("the restored state is %d bytes, more than the actor's limit of %d", len(r.State), maxState)
	}
	if got := digestHex(r.State); got != r.Sha256 {
		return fmt.Errorf("the restored state's digest is sha256:%.12s, the chain records sha256:%.12s", got, r.Sha256)
	}
	return nil
}

// ActorConfig describes one actor to start.
type ActorConfig struct {
	// ID is the actor's stable id. "" takes the id saved in Dir, or a new
	// UUID. A Dir saved for another id is an error.
	ID string
	// Name is the manifest name (get-actor-name, WASI args[0]); Namespace
	// its Kubernetes namespace, "" in local mode.
	Name, Namespace string
	// Component is the compiled module to run.
	Component *Component
	// Dir holds the chain (chain.FileName), the saved state and the
	// identity; "" keeps the chain in memory and saves nothing.
	Dir string
	// Env serves get-env: only the variables the actor declares. Every
	// secret value it knows (EnvSource.SecretValues) is scrubbed from what
	// the actor hands the host from its first call on, so a secret kept in
	// the saved state stays out of the chain and the logs even before the
	// actor reads it again.
	Env runtimehandler.EnvSource
	// Handler holds the runtime handler's limits; the zero value is
	// runtimehandler.DefaultConfig().
	Handler runtimehandler.Config
	// MemoryPages limits linear memory, in 64 KiB pages: 0 is
	// limits.DefaultMemoryPages, more than limits.MaxMemoryPages is an
	// error.
	MemoryPages uint32
	// CallTimeout is the deadline of every call into the actor: 0 is
	// limits.DefaultCallTimeout, anything else must lie within
	// limits.MinCallTimeout..MaxCallTimeout.
	CallTimeout time.Duration
	// TickInterval is how often the actor's tick export (when it has one)
	// is called once init has returned: 0 is limits.DefaultTickInterval, a
	// negative value never ticks, and a positive one below
	// limits.MinTickInterval is raised to it. The API and `troupe run`
	// refuse such an interval at their edges (v1alpha1.MinTickInterval
	// is the same constant); the engine keeps the one minimum whatever its
	// caller passes, since a tick is "at most this often" and raising it
	// changes no contract.
	// Modules without the export are never called after init, whatever
	// this says.
	TickInterval time.Duration
	// InitialState is handed to init when Dir holds no saved state; nil
	// passes none.
	InitialState []byte
	// MaxStateBytes bounds the state init or tick may return; 0 is
	// limits.DefaultMaxStateBytes.
	MaxStateBytes int
	// DiskBudget bounds what the actor writes: its chain appends and state
	// writes (rates, with a burst) and its chain's size. nil is
	// diskbudget.DefaultLimits(); a zero field is no limit on that.
	DiskBudget *diskbudget.Limits
	// Durability of a durable chain.
	Durability chain.Durability
	// MemoryChainRetain bounds the events an in-memory chain keeps (0: all).
	MemoryChainRetain int
	// Continue, when set and the chain is empty, starts the chain with a
	// segment linked to that head.
	Continue *ChainLink
	// Logger receives the actor's log lines; the zero Logger uses the
	// engine's.
	Logger logr.Logger
	// MailboxMessages and MailboxBytes bound the actor's mailbox (work
	// waiting for it); 0 is limits.DefaultMailboxMessages and
	// limits.DefaultMailboxBytes.
	MailboxMessages, MailboxBytes int
	// RequestTimeout caps how long a request the actor makes waits (its
	// call's own deadline may be shorter), and how long an external
	// caller's request to it waits; 0 is limits.DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxMessageBytes bounds a message the actor sends or is sent, and a
	// response; 0 is limits.DefaultMaxMessageBytes.
	MaxMessageBytes int
	// Stats, when set, counts the messages the actor receives and sends
	// (a host keeps one per actor across its runs); nil counts them
	// nowhere anyone reads.
	Stats *MessageStats
	// AcceptFrom says which other namespaces' actors may message the
	// actor (spec.acceptMessagesFrom); nil: its own namespace only.
	AcceptFrom *AcceptPolicy
}

// AcceptPolicy names the namespaces, besides its own, whose actors may
// message an actor: those listed, and those whose labels MatchLabels
// matches. External senders (Sender.External) are not subject to it.
type AcceptPolicy struct {
	// Namespaces are accepted by name.
	Namespaces []string
	// MatchLabels, when set, accepts a namespace whose labels
	// (EngineOptions.NamespaceLabels) it matches. An engine without
	// NamespaceLabels (`troupe run`) knows no labels: it matches none.
	MatchLabels func(labels map[string]string) bool
}

// Phase is where an actor is in its life.
type Phase string

// Phases of an actor.
const (
	PhaseStarting  Phase = "Starting"
	PhaseRunning   Phase = "Running"
	PhaseSucceeded Phase = "Succeeded" // the actor called shutdown
	PhaseFailed    Phase = "Failed"
	PhaseStopped   Phase = "Stopped" // the host stopped it
)

// Actor is one run of an actor: a module instance, its runtime-handler
// state and its chain, from Start until it ends (shutdown, a failure, Stop).
// A new run is a new Start on the same Dir, which resumes from the saved
// state and continues the chain. Calls into it are serialized; every method
// is safe for concurrent use.
type Actor struct {
	e         *Engine
	cfg       ActorConfig
	id        string
	log       logr.Logger
	chain     *chain.Chain
	handler   *runtimehandler.Actor
	budget    *diskbudget.Actor
	pages     uint32
	timeout   time.Duration
	maxState  int
	component *Component
	// tickInterval is the period of the ticks; <= 0 never ticks.
	tickInterval time.Duration
	// maxMessage bounds messages and responses; requestTimeout caps the
	// wait of a request.
	maxMessage     int
	requestTimeout time.Duration
	// mbox is the actor's one queue of work: ticks, messages, requests.
	mbox mailbox
	// waitingFor is the actor this one's current call waits for in a
	// request, nil when none; guarded by the engine's waitMu.
	waitingFor *Actor
	// runCtx is canceled when the run is over, or by a Stop that cannot
	// wait for the call in progress.
	runCtx context.Context
	cancel context.CancelFunc
	// done is closed when the run ends.
	done chan struct{}

	// callLock serializes everything that touches the instance: calls,
	// boot, stop. A channel so a Stop can give up waiting.
	callLock chan struct{}

	// Instance state, guarded by callLock.
	mod     api.Module
	mem     api.Memory
	limiter *memoryLimiter
	// lim is limiter for readers outside the call lock (accounting).
	lim atomic.Pointer[memoryLimiter]
	// instanceHeld and buffersHeld are what the instance's heap and the
	// chain buffers and state hold in the host's budget.
	instanceHeld, buffersHeld atomic.Uint64
	// realloc is the guest's cabi_realloc, which lowers init's arguments
	// and every tick's state; initialize its optional _initialize.
	realloc, initialize api.Function
	// initCall and tickCall are the state calls of the contract;
	// tickCall.fn is nil when the actor does not tick. sendCall and
	// requestCall are bound on the first message, so an actor that is
	// never sent to does not keep their call stacks.
	initCall, tickCall, sendCall, requestCall stateCall
	// curCall is the context of the call into the guest in progress
	// (beginCall), nil between calls; callStop and callCancel end it.
	curCall    context.Context
	callStop   func() bool
	callCancel context.CancelFunc
	// eventBuf is reused to encode the events of messages (eventjson.go);
	// guarded by callLock.
	eventBuf []byte
	// exports caches the functions Call has called.
	exports map[string]api.Function
	// deadline of the call in progress (UnixNano), read by the WASI sleep
	// so a guest cannot sleep past it.
	deadline atomic.Int64
	// stopping is set by a Stop that had to cancel the call in progress, so
	// the canceled call ends the run as stopped, not failed.
	stopping atomic.Bool
	// evicted is why the engine ended the run from outside it (evict);
	// a call it canceled then fails with it rather than Canceled.
	evicted atomic.Pointer[ActorError]
	// ticks counts the tick calls that returned ok; tickArmed is 1 while
	// the run has a tick timer (for tests: an ended run has none).
	ticks     atomic.Uint64
	tickArmed atomic.Int32

	// resume is what the run resumes from, decided when the directory was
	// opened; store saves its states (statefile.go). Guarded by callLock.
	resume resumption
	store  stateStore

	mu sync.Mutex // guards the fields below
	// tickTimer enqueues the next tick (time.AfterFunc: no goroutine
	// while it waits); tickStopped once the run ended.
	tickTimer   *time.Timer
	tickStopped bool
	phase       Phase
	err         error
	state       savedState
	released    bool
	head        chain.Hash
	length      uint64
}

// ID returns the actor's id.
func (a *Actor) ID() string { return a.id }

// Name returns the actor's name.
func (a *Actor) Name() string { return a.cfg.Name }

// Done is closed when the actor's run ends: it called shutdown, failed, or
// was stopped.
func (a *Actor) Done() <-chan struct{} { return a.done }

// Err returns why the actor failed (an *ActorError), or nil.
func (a *Actor) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Phase returns where the actor is in its life.
func (a *Actor) Phase() Phase {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.phase
}

// Head returns the chain's head hash and length.
func (a *Actor) Head() (chain.Hash, uint64) {
	a.mu.Lock()
	released, head, length := a.released, a.head, a.length
	a.mu.Unlock()
	if released {
		return head, length
	}
	return a.chain.Head()
}

// Chain returns the actor's chain, for reading its events.
func (a *Actor) Chain() *chain.Chain { return a.chain }

// State returns the state init or tick last returned (nil for none). The
// slice is the actor's: do not modify it.
func (a *Actor) State() []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.state.hasState {
		return nil
	}
	if a.state.state == nil {
		return []byte{}
	}
	return a.state.state
}

// Ticks counts the tick calls that returned ok.
func (a *Actor) Ticks() uint64 { return a.ticks.Load() }

// ShutdownData returns the data the actor passed to shutdown, if it did.
func (a *Actor) ShutdownData() (data []byte, hasData, requested bool) {
	return a.handler.Shutdown()
}

// lifecycleData is the data of ActorStart events.
type lifecycleData struct {
	ID        string `json:"actorID"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	Component string `json:"component"`
	// Format is "component" when the actor's bytes were a WebAssembly
	// component, which runs as its main module MainModule (both omitted
	// for a core module).
	Format      string `json:"format,omitempty"`
	MainModule  string `json:"mainModule,omitempty"`
	MemoryPages uint32 `json:"memoryPages"`
	CallTimeout string `json:"callTimeout"`
	Resumed     bool   `json:"resumed"`
}

// record appends an event the engine writes on the actor's account: its
// lifecycle and its ticks. It is charged to the actor's disk budget, never
// refused by it (the debt it may leave is waited off before the next
// tick), so that why a run ended is always recorded.
func (a *Actor) record(kind chain.Kind, op string, v any) error {
	return a.recordNoting(kind, op, v, nil)
}

// recordNoting is record with the chain's AppendNoting.
func (a *Actor) recordNoting(kind chain.Kind, op string, v any, note func(uint64)) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s event: %w", kind, err)
	}
	return a.recordJSON(kind, op, data, note)
}

// recordJSON is recordNoting with the data encoded already.
func (a *Actor) recordJSON(kind chain.Kind, op string, data []byte, note func(uint64)) error {
	a.budget.Charge(chain.RecordSize(kind, op, len(data)))
	if _, err := a.chain.AppendNoting(kind, op, data, note); err != nil {
		return fmt.Errorf("recording %s: %w", kind, err)
	}
	return nil
}

func digestHex(b []byte) string {
	d := sha256.Sum256(b)
	return hex.EncodeToString(d[:])
}

// stateRecord is how InitCall, InitResult, ActorRestart and ActorTick
// events describe the actor's state: whether it has one, and its SHA-256
// (hex) and size. The digest is always written as stateSha256; ActorTick
// events of chains written by v0.1.0 name it stateDigest, and readers
// accept both (docs/chain-format.md).
type stateRecord struct {
	HasState bool   `json:"hasState"`
	Sha256   string `json:"stateSha256,omitempty"`
	Bytes    *int   `json:"stateBytes,omitempty"`
}

// stateRecord describes the actor's current state; called with the call
// lock held (the state changes only under it).
func (a *Actor) stateRecord() stateRecord {
	r := stateRecord{HasState: a.state.hasState}
	if r.HasState {
		n := len(a.state.state)
		r.Sha256, r.Bytes = digestHex(a.state.state), &n
	}
	return r
}

// setState makes s the actor's state, in memory only: the event the caller
// appends next with recordState records it, and the chain saves it in a
// slot before it writes that event to the file (statefile.go). Refused,
// as every write is, while the node is short of disk. op names the call
// that returned it, for the error.
func (a *Actor) setState(op string, s savedState) error {
	if a.cfg.Dir != "" {
		if err := a.budget.Pressure(); err != nil {
			return wrapOp(err, op)
		}
	}
	a.mu.Lock()
	a.state = s
	a.mu.Unlock()
	return nil
}

// recordState is record for an event that records the actor's state:
// when changed (setState was just called), the chain learns as it appends
// the event that the state is to be saved before the event is written.
// Called with the call lock held.
func (a *Actor) recordState(kind chain.Kind, op string, v any, changed bool) error {
	return a.recordNoting(kind, op, v, a.stateNote(changed))
}

// stateNote is the note of an event that records the state: noteState
// when the state changed and is saved, else none.
func (a *Actor) stateNote(changed bool) func(uint64) {
	if !changed || a.cfg.Dir == "" {
		return nil
	}
	return a.noteState
}

// noteState is recordState's note, called by the chain with the seq of the
// event that records the actor's state, under the chain's lock. a.state is
// read without a.mu: the appender holds the call lock, under which alone
// it changes.
func (a *Actor) noteState(seq uint64) { a.store.recorded(seq, a.state) }

// saveState is the chain's BeforeWrite (statefile.go).
func (a *Actor) saveState(w chain.Write) error { return a.store.save(w) }
