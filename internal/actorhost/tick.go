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

// startTicker starts the tick loop of the run when the component exports
// tick and ticking is on. Called with the call lock held, once init has
// returned ok and the actor is Running.
func (a *Actor) startTicker() {
	if a.tickCall.fn == nil {
		return
	}
	a.tickers.Add(1)
	a.tickLoops.Add(1)
	go a.tickLoop(a.done)
}

// tickLoop calls tick every interval until the run whose Done channel is
// done ends: Stop, shutdown, a failure, the engine's Close.
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
		// A tick that wrote more than the actor's disk budget allows (a
		// big state, many events) left it in debt: the next one waits
		// until it is paid, so the actor ticks less often instead of
		// failing its next call.
		if d := a.budget.Backlog(); d > 0 {
			wait := time.NewTimer(d)
			select {
			case <-done:
				wait.Stop()
				return
			case <-wait.C:
			}
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

// callTick calls tick with the state and the host's time and saves the new
// state when it changed. It records an ActorTick event only when the tick
// had an effect (a new state, or runtime calls, which the chain recorded).
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
	slot := -1
	if changed {
		if slot, err = a.setState("tick", out.saved()); err != nil {
			return err
		}
	}
	if _, after := a.chain.Head(); !changed && after == before {
		return nil
	}
	d.OK, d.StateChanged, d.stateRecord = true, changed, a.stateRecord()
	if err := a.record(chain.KindTick, "tick", d); err != nil {
		return hostError("tick", err)
	}
	a.stateRecorded(slot)
	return nil
}

// now is the engine's clock, the one the runtime handler and the chains use.
func (a *Actor) now() time.Time {
	if a.e.opts.Now != nil {
		return a.e.opts.Now()
	}
	return time.Now()
}
