package actorhost

import (
	"bytes"
	"context"
	"time"

	"github.com/troupe-dev/troupe/internal/chain"
)

// tickData is the data of an ActorTick event.
type tickData struct {
	// Now is the time tick was handed, ms since the Unix epoch.
	Now uint64 `json:"now"`
	// OK is false when tick returned err (the actor then fails).
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// The state after the tick (before it, for a failed tick).
	stateRecord
	StateChanged bool `json:"stateChanged"`
}

// startTicker arms the run's tick timer when the component exports tick
// and ticking is on. Called with the call lock held, once init has returned
// ok and the actor is Running. The timer is a time.AfterFunc: while it
// waits, the actor has no goroutine; when it fires, it queues a tick in the
// mailbox, behind whatever arrived before, and the next timer is armed
// once that tick has been handled (armTick), so ticks never pile up.
func (a *Actor) startTicker() {
	if a.tickCall.fn == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tickStopped {
		return
	}
	a.tickArmed.Store(1)
	a.tickTimer = time.AfterFunc(a.tickInterval, a.enqueueTick)
}

// enqueueTick is the tick timer's function: a tick item in the mailbox
// (none when one is pending already, or the run is over).
func (a *Actor) enqueueTick() {
	a.mbox.push(&work{kind: workTick})
}

// armTick arms the timer for the next tick, unless the run is over. A
// tick that wrote more than the actor's disk budget allows (a big state,
// many events) left it in debt: the next one comes later by the time the
// debt takes to be paid, so the actor ticks less often instead of failing
// its next call.
func (a *Actor) armTick() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tickTimer != nil && !a.tickStopped {
		a.tickTimer.Reset(a.tickInterval + a.budget.Backlog())
	}
}

// stopTicker stops the run's ticks for good; called when the run ends.
func (a *Actor) stopTicker() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tickStopped = true
	if a.tickTimer != nil {
		a.tickTimer.Stop()
	}
	a.tickArmed.Store(0)
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
		// The run ended while this tick waited.
		return false, nil
	default:
	}
	if a.Phase() != PhaseRunning || a.tickCall.fn == nil {
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

// callTick calls tick with the state and the host's time and keeps the new
// state when it changed (saved before its event is written: statefile.go).
// It records an ActorTick event only when the tick had an effect (a new
// state, or runtime calls, which the chain recorded).
// Called with the call lock held; an error is the reason the actor fails.
func (a *Actor) callTick(ctx context.Context) error {
	_, before := a.chain.Head()
	nowMs := uint64(max(a.now().UnixMilli(), 0))
	out, err := a.callState(ctx, &a.tickCall, nowMs)
	if err != nil {
		return err
	}
	d := tickData{Now: nowMs}
	if !out.ok {
		d.Error, d.stateRecord = out.errMsg, a.stateRecord()
		_ = a.record(chain.KindTick, "tick", d)
		return a.tickCall.refused(out.errMsg)
	}
	changed := out.hasState != a.state.hasState || !bytes.Equal(out.state, a.state.state)
	if changed {
		if err := a.setState("tick", out.saved()); err != nil {
			return err
		}
	}
	if _, after := a.chain.Head(); !changed && after == before {
		return nil
	}
	d.OK, d.StateChanged, d.stateRecord = true, changed, a.stateRecord()
	if err := a.recordState(chain.KindTick, "tick", d, changed); err != nil {
		return hostError("tick", err)
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
