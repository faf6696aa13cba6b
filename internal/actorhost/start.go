package actorhost

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/troupe-dev/troupe/internal/abi"
	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/diskbudget"
	"github.com/troupe-dev/troupe/internal/limits"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
)

// Start starts an actor: it opens (or creates) its chain and saved state,
// instantiates the component and calls init with the saved state, or
// InitialState the first time. Start returns once init has returned.
//
// An error before anything was recorded (bad config, an unusable Dir)
// returns a nil Actor. A failure of the actor itself (instantiation, a trap,
// init's err, ...) returns the failed Actor together with its *ActorError,
// so the caller can still read its chain head, then Stop it; a new Start on
// the same Dir is its next run.
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
	if cfg.Component.IsComponent() {
		info.Format, info.MainModule = "component", cfg.Component.MainModuleDigest()
	}
	resume := a.resume
	if resume.ok {
		a.state = resume.state
	} else {
		a.state = savedState{hasState: cfg.InitialState != nil, state: bytes.Clone(cfg.InitialState)}
	}
	info.Resumed = resume.ok
	if err := a.record(chain.KindActorStart, "start", info); err != nil {
		a.release()
		return nil, fmt.Errorf("starting actor %s: %w", a.id, err)
	}
	if resume.ok {
		rd := restartData{stateRecord: a.stateRecord(), Reason: cmp.Or(resume.reason, "resumed from saved state"), StateEvent: resume.event}
		if resume.note != "" {
			rd.Reason = "resumed from saved state: " + resume.note
			a.log.Info("resuming from a state the chain does not record last", "actorID", a.id, "why", resume.note)
		}
		if err := a.record(chain.KindRestart, "restart", rd); err != nil {
			a.release()
			return nil, fmt.Errorf("starting actor %s: %w", a.id, err)
		}
	}
	// A chain at its size budget, or a node short of disk, can record
	// nothing the actor would do: the run ends here, saying so.
	if err := a.budget.CheckStart(); err != nil {
		return a, a.fail(wrapOp(err, "start"))
	}
	if err := a.boot(ctx); err != nil {
		return a, err
	}
	// What it took to start is what the next start of the component is
	// expected to take (StartEstimate).
	a.observe()
	return a, nil
}

// restartData is the data of an ActorRestart event: the state the run
// resumes from, why, and the event that recorded it.
type restartData struct {
	stateRecord
	Reason string `json:"reason"`
	// StateEvent is the seq of the event that recorded the state resumed
	// from: the last InitResult or ActorTick before this run. Absent only
	// for a state file of Troupe v0.1.0 the chain does not record (Reason
	// says so).
	StateEvent *uint64 `json:"stateEvent,omitempty"`
}

// newActor validates cfg and prepares the actor's directory, chain and
// handler state.
func (e *Engine) newActor(cfg ActorConfig) (a *Actor, err error) {
	if cfg.Component == nil {
		return nil, errors.New("starting actor: ActorConfig.Component is required")
	}
	a = &Actor{e: e, cfg: cfg, component: cfg.Component, callLock: make(chan struct{}, 1), phase: PhaseStarting,
		done: make(chan struct{})}
	a.mbox.owner, a.mbox.pool = a, e.drains
	if err := a.applyLimits(cfg); err != nil {
		return nil, fmt.Errorf("starting actor %s: %w", cfg.Name, err)
	}
	if err := checkContinue(cfg.Continue, a.maxState); err != nil {
		return nil, fmt.Errorf("starting actor %s: %w", cfg.Name, err)
	}
	a.log = cfg.Logger
	if a.log.GetSink() == nil {
		a.log = e.log
	}
	if err := a.openChain(); err != nil {
		return nil, err
	}
	// The returns below set a to nil: the deferred close keeps the chain.
	ch := a.chain
	defer func() {
		if err != nil {
			_ = ch.Close()
		}
	}()
	lim := diskbudget.DefaultLimits()
	if cfg.DiskBudget != nil {
		lim = *cfg.DiskBudget
	}
	a.budget = diskbudget.NewActor(lim, e.opts.DiskBudget, a.chain.Size())
	a.store.charge = a.budget.ChargeState
	a.handler, err = runtimehandler.NewActor(runtimehandler.ActorOptions{
		ID: a.id, Name: cfg.Name, Namespace: cfg.Namespace, Config: cfg.Handler, Env: cfg.Env,
		SystemInfo: e.opts.SystemInfo, Chain: a.chain, Budget: a.budget, Deadline: a.callDeadline,
		Metrics: e.opts.Metrics, Logger: a.log, Version: e.opts.Version, Now: e.opts.Now,
		Messenger: actorMessenger{a}, MaxMessageBytes: a.maxMessage,
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
	if cfg.Component.released {
		a.handler.Close()
		return nil, fmt.Errorf("starting actor %s: %w", a.id, ErrComponentReleased)
	}
	cfg.Component.users++
	e.actors[a] = struct{}{}
	// Reachable from now on: what is sent during init waits in the
	// mailbox until init has returned.
	e.register(a)
	return a, nil
}

// applyLimits sets the actor's limits from cfg: a zero field is its
// default; a memory limit or call timeout the API would not admit is an
// error (each is a contract of every call), a too short tick interval is
// raised to the minimum.
func (a *Actor) applyLimits(cfg ActorConfig) error {
	a.pages, a.timeout, a.maxState, a.tickInterval = cfg.MemoryPages, cfg.CallTimeout, cfg.MaxStateBytes, cfg.TickInterval
	if a.pages == 0 {
		a.pages = limits.DefaultMemoryPages
	}
	if err := limits.CheckMemoryPages(int64(a.pages)); err != nil {
		return err
	}
	if a.timeout == 0 {
		a.timeout = limits.DefaultCallTimeout
	}
	if err := limits.CheckCallTimeout(a.timeout); err != nil {
		return err
	}
	if a.maxState <= 0 {
		a.maxState = limits.DefaultMaxStateBytes
	}
	switch {
	case a.tickInterval == 0:
		a.tickInterval = limits.DefaultTickInterval
	case a.tickInterval > 0:
		a.tickInterval = max(a.tickInterval, limits.MinTickInterval)
	}
	a.mbox.maxItems, a.mbox.maxBytes = cmp.Or(cfg.MailboxMessages, limits.DefaultMailboxMessages), cmp.Or(cfg.MailboxBytes, limits.DefaultMailboxBytes)
	if err := limits.CheckMailbox(int64(a.mbox.maxItems), int64(a.mbox.maxBytes)); err != nil {
		return err
	}
	a.requestTimeout = cmp.Or(cfg.RequestTimeout, limits.DefaultRequestTimeout)
	if err := limits.CheckRequestTimeout(a.requestTimeout); err != nil {
		return err
	}
	a.maxMessage = cmp.Or(cfg.MaxMessageBytes, limits.DefaultMaxMessageBytes)
	return limits.CheckMaxMessageBytes(int64(a.maxMessage))
}

// openChain settles the actor's id and opens its chain: in Dir, checking
// the identity saved there (or writing it the first time), or in memory;
// and starts a segment linked to cfg.Continue on an empty chain.
func (a *Actor) openChain() error {
	cfg := a.cfg
	a.id = cfg.ID
	copts := chain.Options{Durability: cfg.Durability, Now: a.e.opts.Now, Retain: cfg.MemoryChainRetain}
	if cfg.Dir == "" {
		if a.id == "" {
			a.id = uuid.NewString()
		}
		a.chain = chain.NewMemory(copts)
	} else if err := a.openDir(copts); err != nil {
		return err
	}
	c := cfg.Continue
	if c == nil {
		return nil
	}
	head, length := a.chain.Head()
	switch {
	case length == 0:
		// The state the actor had at the head it continues is not in this
		// directory (its chain would hold the head, or was moved aside with
		// its states): it comes from the archive (c.Restored), or init gets
		// the initial state and the event says the state was lost.
		seg := newSegmentData(a.id, c)
		data, _ := json.Marshal(seg)
		if _, err := a.chain.StartSegment(c.Head, c.Length, data); err != nil {
			_ = a.chain.Close()
			return fmt.Errorf("starting actor %s: %w", a.id, err)
		}
		if r := c.Restored; r != nil && r.Event != nil {
			ev := *r.Event
			a.resume = resumption{ok: true, state: savedState{hasState: r.HasState, state: bytes.Clone(r.State)}, event: &ev,
				reason: fmt.Sprintf("restored from the archive (epoch %d)", r.Epoch)}
		}
	case c.Restored != nil:
		// A restored state is for a segment that starts here; a chain
		// that already goes on has states of its own to resume from.
		_ = a.chain.Close()
		return fmt.Errorf("starting actor %s: a state restored from the archive, but its chain already holds %d events", a.id, length)
	case head != c.Head || length != c.Length:
		_ = a.chain.Close()
		return fmt.Errorf("starting actor %s: its chain ends at %s (%d events), not at the head %s (%d) it should continue",
			a.id, head.Short(), length, c.Head.Short(), c.Length)
	}
	return nil
}

// checkContinue refuses a link the engine cannot start a segment from
// honestly: a restored state that is not the one it names, or a lost head
// that is the head continued.
func checkContinue(c *ChainLink, maxState int) error {
	if c == nil {
		return nil
	}
	if r := c.Restored; r != nil {
		if c.Length == 0 {
			return errors.New("a state restored for a chain with no head")
		}
		if err := r.check(c.Length, maxState); err != nil {
			return fmt.Errorf("refusing the restored state: %w", err)
		}
	}
	if l := c.Lost; l != nil {
		if l.Length == 0 || l.Restored != nil || l.Lost != nil {
			return errors.New("a lost head must name a position and nothing else")
		}
		if l.Length == c.Length && l.Head == c.Head {
			return errors.New("the lost head is the head the segment continues")
		}
	}
	return nil
}

// newSegmentData describes the segment that starts by continuing c.
func newSegmentData(id string, c *ChainLink) segmentData {
	seg := segmentData{PreviousHead: c.Head.String(), PreviousLength: c.Length, PreviousNode: c.Node, ActorID: id}
	seg.StateRestored, seg.StateLost = c.RestoresState(), c.StateLost()
	if r := c.Restored; r != nil {
		seg.Archive = &segmentArchive{Epoch: r.Epoch, Head: c.Head.String(), Length: c.Length, StateEvent: r.Event, HasState: r.HasState}
		if r.HasState {
			n := len(r.State)
			seg.Archive.StateSha256, seg.Archive.StateBytes = r.Sha256, &n
		}
	}
	if l := c.Lost; l != nil {
		seg.Gap = &segmentGap{From: c.Length, To: l.Length, LostHead: l.Head.String(), Node: l.Node}
	}
	return seg
}

// segmentData is the data of a SegmentStart event.
type segmentData struct {
	PreviousHead   string `json:"previousHead"`
	PreviousLength uint64 `json:"previousLength"`
	// PreviousNode is where the previous segment was written, when known.
	PreviousNode string `json:"previousNode,omitempty"`
	ActorID      string `json:"actorID"`
	// StateRestored: the run resumes the state the actor had at the
	// previous head, restored from the archive (Archive says which).
	StateRestored bool `json:"stateRestored"`
	// StateLost: the actor had a history before this segment and the
	// state it had at its last known head is not here: init gets the
	// initial state (no archive, or one that holds no state of it).
	StateLost bool `json:"stateLost"`
	// Archive, when the segment starts from an archive, is what it
	// restored: the archive's epoch whose segment ends the history, its
	// head and length (the previous head), and the state restored with
	// the event that recorded it.
	Archive *segmentArchive `json:"archive,omitempty"`
	// Gap, when set, names the events the archive did not hold: they were
	// written after the previous head, up to a head the cluster knew,
	// on a node that did not upload them; they are not in the history.
	Gap *segmentGap `json:"gap,omitempty"`
}

// segmentArchive is what a SegmentStart restored from the archive.
type segmentArchive struct {
	Epoch  int64  `json:"epoch"`
	Head   string `json:"head"`
	Length uint64 `json:"length"`
	// StateEvent is the seq of the event that recorded the state restored;
	// absent when no event of the history records one.
	StateEvent  *uint64 `json:"stateEvent,omitempty"`
	HasState    bool    `json:"hasState"`
	StateSha256 string  `json:"stateSha256,omitempty"`
	StateBytes  *int    `json:"stateBytes,omitempty"`
}

// segmentGap names events lost between the archive's head and the head
// the cluster last knew: seqs From up to (not including) To, ending at
// LostHead, written on Node. To <= From when the lost head lies on a
// branch the history no longer follows.
type segmentGap struct {
	From     uint64 `json:"from"`
	To       uint64 `json:"to"`
	LostHead string `json:"lostHead"`
	Node     string `json:"node,omitempty"`
}

// openDir opens the actor's directory: its chain's lock first, so that
// nothing in the directory is read or written by two starts at once; then
// its identity (written the first time), its saved states, and its chain,
// which must reach as far as the states say it did; and picks the state to
// resume from: the one the chain records last.
func (a *Actor) openDir(copts chain.Options) error {
	dir := a.cfg.Dir
	lock, err := chain.Lock(actordir.ChainPath(dir))
	if err != nil {
		return fmt.Errorf("starting actor: %w", err)
	}
	if a.id, err = claimDir(dir, a.id, a.cfg.Name, a.cfg.Namespace, lock.Created()); err != nil {
		lock.Release()
		return fmt.Errorf("starting actor: %w", err)
	}
	if err := recoverRotation(dir); err != nil {
		lock.Release()
		return fmt.Errorf("starting actor %s: %w", a.id, err)
	}
	states, err := loadStates(dir, a.maxState)
	if err != nil {
		lock.Release()
		return fmt.Errorf("starting actor %s: %w", a.id, err)
	}
	tracker := stateTracker{boundary: states.boundary()}
	copts.Floor, copts.Observe, copts.BeforeWrite = states.floor(), tracker.observe, a.saveState
	ch, rec, err := lock.Open(copts)
	if err != nil {
		return fmt.Errorf("starting actor %s: %w", a.id, err)
	}
	if rec.DroppedBytes > 0 {
		a.log.Info("cut a torn tail off the actor's chain", "actorID", a.id,
			"droppedBytes", rec.DroppedBytes, "reason", rec.Reason, "events", rec.Events)
	}
	var cut *cutBack
	a.resume, a.store, cut, err = settleStates(ch, states, &tracker)
	if err != nil {
		_ = ch.Close()
		return fmt.Errorf("starting actor %s: %w", a.id, err)
	}
	if cut != nil {
		a.log.Info("cut off the actor's chain the events of a write that a crash cut short: one records a state that was never saved, and none was durable",
			"actorID", a.id, "fromEvent", cut.from, "toEvent", cut.to-1, "droppedBytes", cut.bytes)
	}
	a.chain = ch
	return nil
}

// boot instantiates the component and runs _initialize and init. Called
// with the call lock held; on failure the actor has failed (recorded,
// instance closed) and the error is its *ActorError.
func (a *Actor) boot(ctx context.Context) error {
	a.setPhase(PhaseStarting)
	if err := a.instantiate(ctx); err != nil {
		return a.fail(err)
	}
	if a.initialize != nil {
		if _, err := a.invoke(ctx, abi.Initialize.Name, a.initialize); err != nil {
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
	// actor still needs cabi_realloc to hand tick its state; a message
	// handler binds it again on its first message (bindHandler).
	a.initCall, a.initialize = stateCall{}, nil
	if a.tickCall.fn == nil {
		a.realloc = nil
	}
	// Charge the image pages boot wrote now, not at the next refresh:
	// starts admitted meanwhile must see them.
	a.limiter.recount()
	if a.shutdownRequested() {
		return a.finishShutdown()
	}
	a.setPhase(PhaseRunning)
	a.log.V(1).Info("actor running", "actorID", a.id, "name", a.cfg.Name)
	a.startTicker()
	return nil
}

// instantiate creates the module instance with WASI and a memory capped at
// the actor's limit, and resolves the exports the engine calls.
func (a *Actor) instantiate(ctx context.Context) (err error) {
	c := a.component
	if c.memMin > a.pages {
		return newActorError(ReasonMemoryLimit, "instantiate",
			"module declares a minimum memory of %d pages, more than the actor's limit of %d pages", c.memMin, a.pages)
	}
	a.limiter = newMemoryLimiter(a.pages, a.e.budget, c.image)
	a.lim.Store(a.limiter)
	if err := a.reserveInstance(); err != nil {
		return err
	}
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
	callCtx, began := a.beginCall(ctx)
	defer a.endCall(began)
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
		return classifyCallError("instantiate", err, callCtx, a.timeout, a.limiter)
	}
	a.mod = mod
	a.mem = mod.ExportedMemory(abi.Memory)
	if a.mem == nil {
		return newActorError(ReasonMissingExport, "instantiate", "instance lacks its memory")
	}
	// Compile checked that the required exports are there; an instance
	// that lacks one anyway is refused here rather than called.
	export := func(x abi.Export) (api.Function, error) {
		if !c.exports[x.Name] {
			return nil, nil
		}
		fn := mod.ExportedFunction(x.Name)
		if fn == nil {
			return nil, newActorError(ReasonMissingExport, "instantiate", "instance lacks %s", x.Name)
		}
		return fn, nil
	}
	if a.realloc, err = export(abi.Realloc); err != nil {
		return err
	}
	if a.initialize, err = export(abi.Initialize); err != nil {
		return err
	}
	if a.initCall, err = bindStateCall(export, initExport); err != nil {
		return err
	}
	if a.tickInterval > 0 {
		if a.tickCall, err = bindStateCall(export, tickExport); err != nil {
			return err
		}
	}
	return nil
}

// initCallData is the data of an InitCall event: the state init is handed
// and the actor id.
type initCallData struct {
	stateRecord
	ActorID string `json:"actorID"`
}

// initResultData is the data of an InitResult event: ok with the new
// state, or the guest's error.
type initResultData struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	*stateRecord
}

// callInit calls init with the state and the actor id, keeps the state it
// returns and records the call and its result. Called with the call lock
// held; an error is the reason the actor fails.
func (a *Actor) callInit(ctx context.Context) error {
	idPtr, err := a.lower(ctx, "actor id", []byte(a.id))
	if err != nil {
		return wrapOp(err, abi.Realloc.Name)
	}
	if err := a.record(chain.KindInitCall, "init", initCallData{a.stateRecord(), a.id}); err != nil {
		return hostError("init", err)
	}
	out, err := a.callState(ctx, &a.initCall, uint64(idPtr), uint64(len(a.id)))
	if err != nil {
		return err
	}
	if !out.ok {
		_ = a.record(chain.KindInitResult, "init", initResultData{Error: out.errMsg})
		return a.initCall.refused(out.errMsg)
	}
	if err := a.setState("init", out.saved()); err != nil {
		return err
	}
	rec := a.stateRecord()
	// Saved even when init returns the state it was handed, which may be
	// one no slot holds (the initial state): one slot write a start.
	if err := a.recordState(chain.KindInitResult, "init", initResultData{OK: true, stateRecord: &rec}, true); err != nil {
		return hostError("init", err)
	}
	return nil
}
