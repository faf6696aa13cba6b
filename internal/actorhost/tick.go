package actorhost

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/troupe-dev/troupe/internal/chain"
)

// tickData is the data of an ActorTick event.
type tickData struct {
	// Now is the time tick was handed, ms since the Unix epoch.
	Now uint64 `json:"now"`
	// OK is false when tick returned err (the actor then fails).
	OK           bool   `json:"ok"`
	Error        string `json:"error,omitempty"`
	HasState     bool   `json:"hasState"`
	StateDigest  string `json:"stateDigest,omitempty"` // SHA-256 (hex) of the state after the tick
	StateBytes   int    `json:"stateBytes,omitempty"`
	StateChanged bool   `json:"stateChanged"`
}

// Ticks counts the tick calls that returned ok, over every run of the actor.
func (a *Actor) Ticks() uint64 { return a.ticks.Load() }

// startTicker starts the tick loop of the current run when the component
// exports tick and ticking is on. Called with the call lock held, once init
// has returned ok and the actor is Running.
func (a *Actor) startTicker() {
	if a.fnTick == nil {
		return
	}
	a.mu.Lock()
	done := a.done
	a.mu.Unlock()
	a.tickers.Add(1)
	a.tickLoops.Add(1)
	go a.tickLoop(done)
}

// tickLoop calls tick every interval until the run whose Done channel is
// done ends: Stop, Restart, shutdown, a failure, the engine's Close.
func (a *Actor) tickLoop(done <-chan struct{}) {
	defer a.tickers.Done()
	defer a.tickLoops.Add(-1)
	t := time.NewTicker(a.tickInterval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		// Failures end the run (recorded, Err set); nothing to do here.
		if more, _ := a.tick(context.Background(), done); !more {
			return
		}
	}
}

// tick makes one tick call under the call lock, so it never overlaps
// another call into the actor. more is false when the run is over: it ended
// before the lock was free, the tick failed it (err is its *ActorError) or
// the actor asked to shut down.
func (a *Actor) tick(ctx context.Context, done <-chan struct{}) (more bool, err error) {
	select {
	case a.callLock <- struct{}{}:
	case <-done:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer a.unlock()
	select {
	case <-done:
		// The run ended (or was restarted) while this tick waited.
		return false, nil
	default:
	}
	if a.Phase() != PhaseRunning || a.fnTick == nil {
		return false, nil
	}
	if err := a.callTick(ctx); err != nil {
		return false, a.fail(err)
	}
	a.ticks.Add(1)
	if a.shutdownRequested() {
		return false, a.finishShutdown()
	}
	return true, nil
}

// callTick lowers the state, calls tick with the host's time, lifts its
// result (before cabi_post may free it) and saves the new state when it
// changed. It records an ActorTick event only when the tick had an effect.
// Called with the call lock held; an error is the reason the actor fails.
func (a *Actor) callTick(ctx context.Context) error {
	_, before := a.chain.Head()
	var disc, statePtr, stateLen uint64
	if a.state.hasState {
		ptr, err := a.lower(ctx, "state", a.state.state)
		if err != nil {
			return wrapOp(err, exportRealloc)
		}
		disc, statePtr, stateLen = 1, uint64(ptr), uint64(len(a.state.state))
	}
	nowMs := uint64(max(a.now().UnixMilli(), 0))
	res, err := a.invoke(ctx, "tick", a.fnTick, disc, statePtr, stateLen, nowMs)
	if err != nil {
		return err
	}
	mem := a.mem
	view, _ := mem.Read(0, uint32(min(memorySize(mem), 1<<32-1)))
	out, err := decodeResult(view, uint32(res[0]), a.maxState, maxInitErrorBytes, "tick")
	if err != nil {
		return wrapOp(err, "tick")
	}
	if a.fnTickPost != nil {
		if _, err := a.invoke(ctx, exportTickPost, a.fnTickPost, res[0]); err != nil {
			return err
		}
	}
	if !out.ok {
		msg := a.handler.Redact(out.errMsg) // as init's: it reaches the chain, status and Events
		_ = a.record(chain.KindTick, "tick", tickData{Now: nowMs, Error: msg, HasState: a.state.hasState})
		return &ActorError{Reason: ReasonTickFailed, Op: "tick", Message: msg, Err: errors.New(msg)}
	}
	changed := out.hasState != a.state.hasState || !bytes.Equal(out.state, a.state.state)
	if changed {
		newState := savedState{hasState: out.hasState, state: out.state}
		if a.cfg.Dir != "" {
			if err := writeState(a.cfg.Dir, newState); err != nil {
				return &ActorError{Reason: ReasonHostError, Op: "tick", Message: err.Error(), Err: err}
			}
		}
		a.mu.Lock()
		a.state = newState
		a.mu.Unlock()
	}
	if _, after := a.chain.Head(); !changed && after == before {
		return nil
	}
	d := tickData{Now: nowMs, OK: true, HasState: a.state.hasState, StateChanged: changed}
	if a.state.hasState {
		d.StateDigest, d.StateBytes = digestHex(a.state.state), len(a.state.state)
	}
	if err := a.record(chain.KindTick, "tick", d); err != nil {
		return &ActorError{Reason: ReasonHostError, Op: "tick", Message: err.Error(), Err: err}
	}
	return nil
}

// now is the engine's clock, the one the runtime handler and the chains use.
func (a *Actor) now() time.Time {
	if a.e.opts.Now != nil {
		return a.e.opts.Now()
	}
	return time.Now()
}
