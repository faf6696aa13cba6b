package actorhost

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/uuid"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
)

// Defaults of an actor's limits.
const (
	// DefaultMemoryPages is the default linear-memory limit (64 MiB).
	DefaultMemoryPages = 1024
	// DefaultCallTimeout is the default deadline of a call into an actor.
	DefaultCallTimeout = 5 * time.Second
	// DefaultMaxStateBytes bounds the state init may return.
	DefaultMaxStateBytes = 16 << 20
	// maxInitErrorBytes bounds the part of init's error string that is kept.
	maxInitErrorBytes = 4 << 10
)

// ChainLink is a head recorded elsewhere that a new chain continues (an
// actor that moved to another host starts a segment linked to it).
type ChainLink struct {
	Head   chain.Hash
	Length uint64
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
	// Env serves get-env: only the variables the actor declares.
	Env runtimehandler.EnvSource
	// Handler holds the runtime handler's limits; the zero value is
	// runtimehandler.DefaultConfig().
	Handler runtimehandler.Config
	// MemoryPages limits linear memory, in 64 KiB pages; 0 is
	// DefaultMemoryPages.
	MemoryPages uint32
	// CallTimeout is the deadline of every call into the actor; 0 is
	// DefaultCallTimeout.
	CallTimeout time.Duration
	// TickInterval is how often the actor's tick export (when it has one)
	// is called once init has returned: 0 is DefaultTickInterval, a
	// negative value never ticks. Modules without the export are never
	// called after init, whatever this says.
	TickInterval time.Duration
	// InitialState is handed to init when Dir holds no saved state; nil
	// passes none.
	InitialState []byte
	// MaxStateBytes bounds the state init may return; 0 is
	// DefaultMaxStateBytes.
	MaxStateBytes int
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

// Actor is one running actor: a module instance, its runtime-handler state
// and its chain. Calls into it are serialized; every method is safe for
// concurrent use.
type Actor struct {
	e         *Engine
	cfg       ActorConfig
	id        string
	log       logr.Logger
	chain     *chain.Chain
	handler   *runtimehandler.Actor
	pages     uint32
	timeout   time.Duration
	maxState  int
	component *Component
	// tickInterval is the period of the tick loop; <= 0 never ticks.
	tickInterval time.Duration

	// callLock serializes everything that touches the instance: calls,
	// boot, stop, restart. A channel so a Stop can give up waiting.
	callLock chan struct{}

	// Instance state, guarded by callLock.
	mod                                     api.Module
	mem                                     api.Memory
	limiter                                 *memoryLimiter
	fnInit, fnPost, fnRealloc, fnInitialize api.Function
	// fnTick and fnTickPost are the optional ticker export and its
	// cabi_post; a ticking actor keeps fnRealloc too, to lower its state.
	fnTick, fnTickPost api.Function
	// exports caches the functions Call has called.
	exports map[string]api.Function
	// deadline of the call in progress (UnixNano), read by the WASI sleep
	// so a guest cannot sleep past it.
	deadline atomic.Int64
	// stopping is set by a Stop that had to cancel the call in progress, so
	// the canceled call ends the run as stopped, not failed.
	stopping atomic.Bool
	// ticks counts the tick calls that returned ok; tickers the running
	// tick loops (one per run at most; Stop waits for them), which
	// tickLoops counts for tests.
	ticks     atomic.Uint64
	tickers   sync.WaitGroup
	tickLoops atomic.Int32

	mu       sync.Mutex // guards the fields below
	phase    Phase
	err      error
	done     chan struct{}
	runCtx   context.Context
	cancel   context.CancelFunc
	state    savedState
	restarts int
	released bool
	head     chain.Hash
	length   uint64
}

// Start starts an actor: it opens (or creates) its chain and saved state,
// instantiates the component and calls init with the saved state, or
// InitialState the first time. Start returns once init has returned.
//
// An error before anything was recorded (bad config, an unusable Dir)
// returns a nil Actor. A failure of the actor itself (instantiation, a trap,
// init's err, ...) returns the failed Actor together with its *ActorError,
// so the caller can still read its chain head, Restart or Stop it.
func (e *Engine) Start(ctx context.Context, cfg ActorConfig) (*Actor, error) {
	a, err := e.newActor(cfg)
	if err != nil {
		return nil, err
	}
	if err := a.acquire(ctx); err != nil {
		a.release()
		return nil, err
	}
	defer a.unlock()
	info := lifecycleData{ID: a.id, Name: cfg.Name, Namespace: cfg.Namespace,
		Component: cfg.Component.Digest(), MemoryPages: a.pages, CallTimeout: a.timeout.String()}
	resumed := false
	if cfg.Dir != "" {
		saved, ok, err := readState(cfg.Dir, a.maxState)
		if err != nil {
			a.release()
			return nil, fmt.Errorf("starting actor %s: %w", a.id, err)
		}
		if ok {
			a.state, resumed = saved, true
		}
	}
	if !resumed {
		a.state = savedState{hasState: cfg.InitialState != nil, state: bytes.Clone(cfg.InitialState)}
	}
	info.Resumed = resumed
	if err := a.record(chain.KindActorStart, "start", info); err != nil {
		a.release()
		return nil, fmt.Errorf("starting actor %s: %w", a.id, err)
	}
	if resumed {
		if err := a.record(chain.KindRestart, "restart", a.restartData("resumed from saved state")); err != nil {
			a.release()
			return nil, fmt.Errorf("starting actor %s: %w", a.id, err)
		}
	}
	if err := a.boot(ctx); err != nil {
		return a, err
	}
	return a, nil
}

// newActor validates cfg and prepares the actor's directory, chain and
// handler state.
func (e *Engine) newActor(cfg ActorConfig) (a *Actor, err error) {
	if cfg.Component == nil {
		return nil, errors.New("starting actor: ActorConfig.Component is required")
	}
	a = &Actor{e: e, cfg: cfg, component: cfg.Component, pages: cfg.MemoryPages, timeout: cfg.CallTimeout,
		maxState: cfg.MaxStateBytes, callLock: make(chan struct{}, 1), phase: PhaseStarting,
		done: make(chan struct{})}
	if a.pages == 0 {
		a.pages = DefaultMemoryPages
	}
	if a.pages > 65536 {
		return nil, fmt.Errorf("starting actor: memory limit of %d pages is more than wasm32's 65536", a.pages)
	}
	if a.timeout <= 0 {
		a.timeout = DefaultCallTimeout
	}
	if a.maxState <= 0 {
		a.maxState = DefaultMaxStateBytes
	}
	switch a.tickInterval = cfg.TickInterval; {
	case a.tickInterval == 0:
		a.tickInterval = DefaultTickInterval
	case a.tickInterval > 0 && a.tickInterval < MinTickInterval:
		a.tickInterval = MinTickInterval
	}
	a.log = cfg.Logger
	if a.log.GetSink() == nil {
		a.log = e.log
	}
	a.id = cfg.ID
	copts := chain.Options{Durability: cfg.Durability, Now: e.opts.Now, Retain: cfg.MemoryChainRetain}
	if cfg.Dir != "" {
		if a.id, err = claimDir(cfg.Dir, a.id, cfg.Name, cfg.Namespace); err != nil {
			return nil, fmt.Errorf("starting actor: %w", err)
		}
		ch, rec, err := chain.Open(actordir.ChainPath(cfg.Dir), copts)
		if err != nil {
			return nil, fmt.Errorf("starting actor %s: %w", a.id, err)
		}
		if rec.DroppedBytes > 0 {
			a.log.Info("cut a torn tail off the actor's chain", "actorID", a.id,
				"droppedBytes", rec.DroppedBytes, "reason", rec.Reason, "events", rec.Events)
		}
		a.chain = ch
	} else {
		if a.id == "" {
			a.id = uuid.NewString()
		}
		a.chain = chain.NewMemory(copts)
	}
	defer func() {
		if err != nil {
			_ = a.chain.Close()
		}
	}()
	if c := cfg.Continue; c != nil {
		head, length := a.chain.Head()
		switch {
		case length == 0:
			data, _ := json.Marshal(map[string]any{"previousHead": c.Head.String(), "previousLength": c.Length, "actorID": a.id})
			if _, err := a.chain.StartSegment(c.Head, c.Length, data); err != nil {
				return nil, fmt.Errorf("starting actor %s: %w", a.id, err)
			}
		case head != c.Head || length != c.Length:
			return nil, fmt.Errorf("starting actor %s: its chain ends at %s (%d events), not at the head %s (%d) it should continue",
				a.id, head.Short(), length, c.Head.Short(), c.Length)
		}
	}
	a.handler, err = runtimehandler.NewActor(runtimehandler.ActorOptions{
		ID: a.id, Name: cfg.Name, Namespace: cfg.Namespace, Config: cfg.Handler, Env: cfg.Env,
		SystemInfo: e.opts.SystemInfo, Chain: a.chain, Metrics: e.opts.Metrics, Logger: a.log,
		Version: e.opts.Version, Now: e.opts.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("starting actor %s: %w", a.id, err)
	}
	a.runCtx, a.cancel = context.WithCancel(context.Background())
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		a.handler.Close()
		return nil, errors.New("starting actor: engine is closed")
	}
	e.actors[a] = struct{}{}
	return a, nil
}

// acquire takes the call lock, or gives up when ctx ends.
func (a *Actor) acquire(ctx context.Context) error {
	select {
	case a.callLock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *Actor) unlock() { <-a.callLock }

// ID returns the actor's id.
func (a *Actor) ID() string { return a.id }

// Name returns the actor's name.
func (a *Actor) Name() string { return a.cfg.Name }

// Done is closed when the actor's current run ends: it called shutdown,
// failed, or was stopped. A Restart starts a new run with a new channel.
func (a *Actor) Done() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.done
}

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

// Restarts counts the in-process restarts of this actor.
func (a *Actor) Restarts() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.restarts
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

// State returns the state init last returned (nil for none). The slice is
// the actor's: do not modify it.
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

// MemoryResidentBytes reports the RAM held by the actor's linear memory
// (pages the guest touched), for accounting.
func (a *Actor) MemoryResidentBytes() uint64 {
	if err := a.acquire(context.Background()); err != nil {
		return 0
	}
	defer a.unlock()
	if a.limiter == nil {
		return 0
	}
	return a.limiter.residentBytes()
}

// lifecycleData is the data of ActorStart events.
type lifecycleData struct {
	ID          string `json:"actorID"`
	Name        string `json:"name"`
	Namespace   string `json:"namespace,omitempty"`
	Component   string `json:"component"`
	MemoryPages uint32 `json:"memoryPages"`
	CallTimeout string `json:"callTimeout"`
	Resumed     bool   `json:"resumed"`
}

func (a *Actor) record(kind chain.Kind, op string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s event: %w", kind, err)
	}
	if _, err := a.chain.Append(kind, op, data); err != nil {
		return fmt.Errorf("recording %s: %w", kind, err)
	}
	return nil
}

func digestHex(b []byte) string {
	d := sha256.Sum256(b)
	return hex.EncodeToString(d[:])
}

func (a *Actor) stateFields() map[string]any {
	m := map[string]any{"hasState": a.state.hasState}
	if a.state.hasState {
		m["stateSha256"] = digestHex(a.state.state)
		m["stateBytes"] = len(a.state.state)
	}
	return m
}

func (a *Actor) restartData(reason string) map[string]any {
	m := a.stateFields()
	m["reason"] = reason
	m["restarts"] = a.restarts
	return m
}

// boot instantiates the component and runs _initialize and init. Called
// with the call lock held; on failure the actor has failed (recorded,
// instance closed) and the error is its *ActorError.
func (a *Actor) boot(ctx context.Context) error {
	a.setPhase(PhaseStarting)
	if err := a.instantiate(ctx); err != nil {
		return a.fail(err)
	}
	if a.fnInitialize != nil {
		if _, err := a.invoke(ctx, exportInitialize, a.fnInitialize); err != nil {
			return a.fail(err)
		}
		if a.shutdownRequested() {
			return a.finishShutdown()
		}
	}
	if err := a.callInit(ctx); err != nil {
		return a.fail(err)
	}
	// Each api.Function carries its own call stack (10 KiB in wazevo);
	// an idle actor should not keep the ones only boot needs. A ticking
	// actor still needs cabi_realloc to hand tick its state.
	a.fnInit, a.fnPost, a.fnInitialize = nil, nil, nil
	if a.fnTick == nil {
		a.fnRealloc = nil
	}
	if a.shutdownRequested() {
		return a.finishShutdown()
	}
	a.setPhase(PhaseRunning)
	a.log.V(1).Info("actor running", "actorID", a.id, "name", a.cfg.Name)
	a.startTicker()
	return nil
}

// instantiate creates the module instance with WASI and a memory capped at
// the actor's limit.
func (a *Actor) instantiate(ctx context.Context) (err error) {
	c := a.component
	if c.memMin > a.pages {
		return newActorError(ReasonMemoryLimit, "instantiate",
			"module declares a minimum memory of %d pages, more than the actor's limit of %d pages", c.memMin, a.pages)
	}
	a.limiter = newMemoryLimiter(a.pages)
	mc := wazero.NewModuleConfig().
		WithName("").         // anonymous: many instances of one module coexist
		WithStartFunctions(). // _initialize is called below, under a deadline
		WithArgs(a.cfg.Name).
		WithStdout(a.handler.LogWriter("info")).
		WithStderr(a.handler.LogWriter("error")).
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(a.sleep).
		WithRandSource(rand.Reader)
	callCtx, cancel := a.callContext(ctx)
	defer cancel()
	callCtx = experimental.WithMemoryAllocator(callCtx, a.limiter)
	mod, err := func() (mod api.Module, err error) {
		// Instantiation runs the module's start function, which is guest
		// code; a panic out of wazero here must fail only this actor.
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("instantiating: %v", r)
			}
		}()
		return a.e.rt.InstantiateModule(callCtx, c.compiled, mc)
	}()
	if err != nil {
		return classifyCallError("instantiate", err, callCtx, a.timeout, a.limiter.refused.Load(), a.limiter.limit)
	}
	a.mod = mod
	a.mem = mod.ExportedMemory(exportMemory)
	a.fnInit = mod.ExportedFunction(exportInit)
	a.fnRealloc = mod.ExportedFunction(exportRealloc)
	if c.hasPost {
		a.fnPost = mod.ExportedFunction(exportInitPost)
	}
	if c.hasInitialize {
		a.fnInitialize = mod.ExportedFunction(exportInitialize)
	}
	if c.hasTick && a.tickInterval > 0 {
		a.fnTick = mod.ExportedFunction(exportTick)
		if c.hasTickPost {
			a.fnTickPost = mod.ExportedFunction(exportTickPost)
		}
		if a.fnTick == nil {
			return newActorError(ReasonMissingExport, "instantiate", "instance lacks %s", exportTick)
		}
	}
	if a.fnInit == nil || a.fnRealloc == nil || a.mem == nil {
		return newActorError(ReasonMissingExport, "instantiate", "instance lacks init, cabi_realloc or memory")
	}
	return nil
}

// sleep is WASI's nanosleep for this actor: a real sleep, cut short at the
// current call's deadline so that a sleeping guest cannot outlive it (a host
// function is not interrupted by the context; the guest is, once it wakes).
func (a *Actor) sleep(ns int64) {
	d := time.Duration(ns)
	if dl := a.deadline.Load(); dl != 0 {
		d = min(d, time.Until(time.Unix(0, dl)))
	}
	if d > 0 {
		time.Sleep(d)
	}
}

// callContext derives the context of one call into the guest: the actor's
// deadline, canceled too when the actor's run is canceled by a Stop that
// could not wait, and bound to the actor's runtime-handler state.
func (a *Actor) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	callCtx, cancel := context.WithTimeout(ctx, a.timeout)
	a.mu.Lock()
	run := a.runCtx
	a.mu.Unlock()
	stop := context.AfterFunc(run, cancel)
	if dl, ok := callCtx.Deadline(); ok {
		a.deadline.Store(dl.UnixNano())
	}
	return runtimehandler.WithActor(callCtx, a.handler), func() {
		stop()
		cancel()
		a.deadline.Store(0)
	}
}

// invoke calls fn under the actor's deadline and classifies a failure.
func (a *Actor) invoke(ctx context.Context, op string, fn api.Function, params ...uint64) ([]uint64, error) {
	callCtx, cancel := a.callContext(ctx)
	defer cancel()
	res, err := fn.Call(callCtx, params...)
	if err == nil {
		if dl, _ := callCtx.Deadline(); !time.Now().Before(dl) {
			// The call came back, but at or after its deadline (e.g. out of
			// a WASI sleep: wazero checks the context only in guest code),
			// and wazero may already have closed the module for it.
			return nil, &ActorError{Reason: ReasonTimeout, Op: op,
				Message: fmt.Sprintf("call exceeded its %s deadline", a.timeout), Err: context.DeadlineExceeded}
		}
		if cerr := callCtx.Err(); cerr != nil {
			err = fmt.Errorf("call returned after it was canceled: %w", cerr)
		}
	}
	if err != nil {
		return nil, classifyCallError(op, err, callCtx, a.timeout, a.limiter.refused.Load(), a.limiter.limit)
	}
	return res, nil
}

// lower copies b into guest memory allocated with cabi_realloc(0, 0, 1,
// len), checking the allocator's answer before writing.
func (a *Actor) lower(ctx context.Context, what string, b []byte) (ptr uint32, err error) {
	res, err := a.invoke(ctx, exportRealloc, a.fnRealloc, 0, 0, 1, uint64(len(b)))
	if err != nil {
		return 0, err
	}
	ptr = uint32(res[0])
	mem := a.mem
	size := memorySize(mem)
	switch {
	case ptr == 0 && len(b) > 0:
		return 0, abiErrorf("cabi_realloc returned a null pointer for the %d bytes of the %s", len(b), what)
	case !checkGuestRange(ptr, uint32(len(b)), size):
		return 0, abiErrorf("cabi_realloc returned %#x for the %d bytes of the %s, outside the %d-byte memory", ptr, len(b), what, size)
	}
	if len(b) > 0 && !mem.Write(ptr, b) {
		return 0, abiErrorf("writing the %s at %#x+%d failed", what, ptr, len(b))
	}
	return ptr, nil
}

// memorySize is mem's size in bytes, also for a full 4 GiB memory, whose
// Size() wraps to 0.
func memorySize(mem api.Memory) uint64 {
	if s := mem.Size(); s != 0 {
		return uint64(s)
	}
	pages, _ := mem.Grow(0)
	return uint64(pages) * wasmPageSize
}

// callInit lowers the state and the actor id, calls init, lifts its result
// (before cabi_post may free it), saves the new state and records it.
func (a *Actor) callInit(ctx context.Context) error {
	var disc, statePtr, stateLen uint64
	if a.state.hasState {
		ptr, err := a.lower(ctx, "state", a.state.state)
		if err != nil {
			return wrapOp(err, exportRealloc)
		}
		disc, statePtr, stateLen = 1, uint64(ptr), uint64(len(a.state.state))
	}
	idPtr, err := a.lower(ctx, "actor id", []byte(a.id))
	if err != nil {
		return wrapOp(err, exportRealloc)
	}
	call := a.stateFields()
	call["actorID"] = a.id
	if err := a.record(chain.KindInitCall, "init", call); err != nil {
		return &ActorError{Reason: ReasonHostError, Op: "init", Message: err.Error(), Err: err}
	}
	res, err := a.invoke(ctx, "init", a.fnInit, disc, statePtr, stateLen, uint64(idPtr), uint64(len(a.id)))
	if err != nil {
		return err
	}
	mem := a.mem
	view, _ := mem.Read(0, uint32(min(memorySize(mem), 1<<32-1)))
	out, err := decodeInitResult(view, uint32(res[0]), a.maxState, maxInitErrorBytes)
	if err != nil {
		return wrapOp(err, "init")
	}
	if a.fnPost != nil {
		if _, err := a.invoke(ctx, exportInitPost, a.fnPost, res[0]); err != nil {
			return err
		}
	}
	if !out.ok {
		// The guest's own words, which may quote a secret it read: they
		// go to the chain, the status and an Event.
		msg := a.handler.Redact(out.errMsg)
		_ = a.record(chain.KindInitResult, "init", map[string]any{"ok": false, "error": msg})
		return &ActorError{Reason: ReasonInitFailed, Op: "init", Message: msg, Err: errors.New(msg)}
	}
	newState := savedState{hasState: out.hasState, state: out.state}
	if a.cfg.Dir != "" {
		if err := writeState(a.cfg.Dir, newState); err != nil {
			return &ActorError{Reason: ReasonHostError, Op: "init", Message: err.Error(), Err: err}
		}
	}
	a.mu.Lock()
	a.state = newState
	a.mu.Unlock()
	result := a.stateFields()
	result["ok"] = true
	if err := a.record(chain.KindInitResult, "init", result); err != nil {
		return &ActorError{Reason: ReasonHostError, Op: "init", Message: err.Error(), Err: err}
	}
	return nil
}

// wrapOp turns an ABI violation into an ActorError naming op.
func wrapOp(err error, op string) error {
	var ae *ActorError
	if errors.As(err, &ae) {
		return ae
	}
	var abi *abiError
	if errors.As(err, &abi) {
		return &ActorError{Reason: ReasonABI, Op: op, Message: abi.msg, Err: err}
	}
	return &ActorError{Reason: ReasonHostError, Op: op, Message: err.Error(), Err: err}
}

// Call calls an exported function of the running actor under its deadline,
// for exports beyond init (and benchmarks). A failure of the call fails the
// actor; a shutdown the guest requested during it stops the actor.
func (a *Actor) Call(ctx context.Context, export string, params ...uint64) ([]uint64, error) {
	if err := a.acquire(ctx); err != nil {
		return nil, err
	}
	defer a.unlock()
	if p := a.Phase(); p != PhaseRunning {
		return nil, fmt.Errorf("calling %s: actor %s is %s", export, a.id, p)
	}
	fn := a.exports[export]
	if fn == nil {
		fn = a.mod.ExportedFunction(export)
		if fn != nil {
			if a.exports == nil {
				a.exports = map[string]api.Function{}
			}
			a.exports[export] = fn
		}
	}
	if fn == nil {
		return nil, newActorError(ReasonMissingExport, export, "actor does not export %q", export)
	}
	if n := len(fn.Definition().ParamTypes()); n != len(params) {
		return nil, fmt.Errorf("calling %s: it takes %d parameters, got %d", export, n, len(params))
	}
	res, err := a.invoke(ctx, export, fn, params...)
	if err != nil {
		return nil, a.fail(err)
	}
	if a.shutdownRequested() {
		return res, a.finishShutdown()
	}
	return res, nil
}

func (a *Actor) shutdownRequested() bool {
	_, _, requested := a.handler.Shutdown()
	return requested
}

func (a *Actor) setPhase(p Phase) {
	a.mu.Lock()
	a.phase = p
	a.mu.Unlock()
}

// closeInstance closes the module; called with the call lock held, so no
// guest code runs on the memory being released.
func (a *Actor) closeInstance() {
	if a.mod != nil {
		_ = a.mod.Close(context.Background())
		a.mod, a.mem = nil, nil
	}
	a.fnInit, a.fnPost, a.fnRealloc, a.fnInitialize = nil, nil, nil, nil
	a.fnTick, a.fnTickPost = nil, nil
	a.exports = nil
}

// end finishes the current run in phase p with err; called with the call
// lock held.
func (a *Actor) end(p Phase, err error) {
	a.closeInstance()
	// Lifecycle events are fsynced by the chain; this also flushes the
	// ordinary events appended since the last group commit.
	if serr := a.chain.Sync(); serr != nil {
		a.log.Error(serr, "syncing the actor's chain", "actorID", a.id)
	}
	a.mu.Lock()
	a.phase, a.err = p, err
	close(a.done)
	a.mu.Unlock()
}

// fail records err as the reason the actor stopped and ends the run.
func (a *Actor) fail(err error) error {
	var ae *ActorError
	if !errors.As(err, &ae) {
		ae = &ActorError{Reason: ReasonHostError, Message: err.Error(), Err: err}
	}
	if ae.Reason == ReasonCanceled && a.stopping.Load() {
		_ = a.record(chain.KindActorStop, "stop", map[string]any{"reason": "Stopped",
			"message": "stopped by the host; the call to " + ae.Op + " in progress was canceled"})
		a.end(PhaseStopped, nil)
		return ae
	}
	_ = a.record(chain.KindActorStop, "stop", map[string]any{
		"reason": string(ae.Reason), "op": ae.Op, "message": ae.Message})
	a.log.V(1).Info("actor failed", "actorID", a.id, "name", a.cfg.Name, "reason", ae.Reason, "message", ae.Message)
	a.end(PhaseFailed, ae)
	return ae
}

// finishShutdown records the shutdown the guest asked for and ends the run.
func (a *Actor) finishShutdown() error {
	data, hasData, _ := a.handler.Shutdown()
	sd := map[string]any{"hasData": hasData}
	if hasData {
		sd["data"] = data // base64 in JSON
		sd["dataSha256"] = digestHex(data)
	}
	err := a.record(chain.KindShutdown, "shutdown", sd)
	if err == nil {
		err = a.record(chain.KindActorStop, "stop", map[string]any{"reason": "Shutdown"})
	}
	if err != nil {
		return a.fail(&ActorError{Reason: ReasonHostError, Op: "shutdown", Message: err.Error(), Err: err})
	}
	a.log.V(1).Info("actor shut itself down", "actorID", a.id, "name", a.cfg.Name)
	a.end(PhaseSucceeded, nil)
	return nil
}

// ShutdownData returns the data the actor passed to shutdown, if it did.
func (a *Actor) ShutdownData() (data []byte, hasData, requested bool) {
	a.mu.Lock()
	h := a.handler
	a.mu.Unlock()
	return h.Shutdown()
}

// Stop stops the actor: it waits for the call in progress until ctx ends,
// then cancels it; records ActorStop with reason; closes the instance; and
// flushes and closes the chain. Stop also releases an actor that already
// ended (shutdown or failure); it is idempotent. A stopped actor cannot be
// restarted in this process: start it again from its Dir. When Stop
// returns, the actor's tick loop has ended too.
func (a *Actor) Stop(ctx context.Context, reason string) error {
	err := a.stop(ctx, reason)
	// The run is over (its Done channel closed), so a tick loop waiting
	// for the call lock or its next tick returns at once.
	a.tickers.Wait()
	return err
}

func (a *Actor) stop(ctx context.Context, reason string) error {
	if err := a.acquire(ctx); err != nil {
		// The guest would not give the call back in time: cancel it. The
		// canceled call ends the run (reason Canceled) and unlocks.
		a.stopping.Store(true)
		a.mu.Lock()
		a.cancel()
		a.mu.Unlock()
		_ = a.acquire(context.Background())
	}
	defer a.unlock()
	if a.Phase() == PhaseRunning || a.Phase() == PhaseStarting {
		_ = a.record(chain.KindActorStop, "stop", map[string]any{"reason": "Stopped", "message": reason})
		a.log.V(1).Info("actor stopped", "actorID", a.id, "name", a.cfg.Name, "reason", reason)
		a.end(PhaseStopped, nil)
	}
	return a.release()
}

// release drops the actor's resources after its last run: the handler's
// state (flushing partial log lines), the chain (flush and fsync), and its
// place in the engine. Called with the call lock held, or before the actor
// was ever locked.
func (a *Actor) release() error {
	a.mu.Lock()
	if a.released {
		a.mu.Unlock()
		return nil
	}
	a.released = true
	a.mu.Unlock()
	a.closeInstance()
	if a.handler != nil {
		a.handler.Close()
	}
	head, length := a.chain.Head()
	err := a.chain.Close()
	a.mu.Lock()
	a.head, a.length = head, length
	if a.phase == PhaseStarting || a.phase == PhaseRunning {
		a.phase = PhaseStopped
		close(a.done)
	}
	a.cancel()
	a.mu.Unlock()
	a.e.mu.Lock()
	delete(a.e.actors, a)
	a.e.mu.Unlock()
	if err != nil {
		return fmt.Errorf("closing the chain of actor %s: %w", a.id, err)
	}
	return nil
}

// Restart starts a new run of the actor from its saved state, on the same
// chain: the current run is stopped first if it is still going. It records
// ActorRestart and calls init again; like Start, it returns the run's
// *ActorError when the actor fails to come up.
func (a *Actor) Restart(ctx context.Context, reason string) error {
	if err := a.acquire(ctx); err != nil {
		return err
	}
	defer a.unlock()
	a.mu.Lock()
	if a.released {
		a.mu.Unlock()
		return fmt.Errorf("restarting actor %s: it was stopped and released", a.id)
	}
	running := a.phase == PhaseRunning
	a.mu.Unlock()
	if running {
		_ = a.record(chain.KindActorStop, "stop", map[string]any{"reason": "Restart", "message": reason})
		a.end(PhaseStopped, nil)
	}
	a.mu.Lock()
	a.restarts++
	a.err = nil
	a.done = make(chan struct{})
	a.runCtx, a.cancel = context.WithCancel(context.Background())
	a.mu.Unlock()
	// A new runtime-handler state: the shutdown flag and metric names
	// belong to a run, the chain continues.
	a.handler.Close()
	h, err := runtimehandler.NewActor(runtimehandler.ActorOptions{
		ID: a.id, Name: a.cfg.Name, Namespace: a.cfg.Namespace, Config: a.cfg.Handler, Env: a.cfg.Env,
		SystemInfo: a.e.opts.SystemInfo, Chain: a.chain, Metrics: a.e.opts.Metrics, Logger: a.log,
		Version: a.e.opts.Version, Now: a.e.opts.Now,
		SecretsFrom: a.handler, // the saved state may hold a secret the last run read
	})
	if err != nil {
		return a.fail(err)
	}
	// Written under both locks: the call path reads it under the call
	// lock, ShutdownData under mu.
	a.mu.Lock()
	a.handler = h
	a.mu.Unlock()
	if err := a.record(chain.KindRestart, "restart", a.restartData(reason)); err != nil {
		return a.fail(&ActorError{Reason: ReasonHostError, Op: "restart", Message: err.Error(), Err: err})
	}
	return a.boot(ctx)
}
