package actorhost

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/troupe-dev/troupe/internal/chain"
)

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

func (a *Actor) setPhase(p Phase) {
	a.mu.Lock()
	a.phase = p
	a.mu.Unlock()
}

func (a *Actor) shutdownRequested() bool {
	_, _, requested := a.handler.Shutdown()
	return requested
}

// closeInstance closes the module; called with the call lock held, so no
// guest code runs on the memory being released.
func (a *Actor) closeInstance() {
	if a.mod != nil {
		_ = a.mod.Close(context.Background())
		a.mod, a.mem = nil, nil
	}
	if a.limiter != nil {
		a.observe()
		a.releaseMemory()
	}
	a.realloc, a.initialize = nil, nil
	a.initCall, a.tickCall, a.sendCall, a.requestCall = stateCall{}, stateCall{}, stateCall{}, stateCall{}
	a.exports = nil
}

// end finishes the run in phase p with err; called with the call lock
// held. Its ticks stop, its mailbox refuses new work, and what waited in
// it is answered: the requests with ErrActorNotRunning.
func (a *Actor) end(p Phase, err error) {
	a.stopTicker()
	for _, w := range a.mbox.close() {
		a.answerLeft(w, a.notRunning(p))
	}
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
	if ev := a.evicted.Load(); ev != nil && ae.Reason == ReasonCanceled {
		ae = ev
	}
	if ae.Reason == ReasonCanceled && a.stopping.Load() {
		_ = a.record(chain.KindActorStop, "stop", stopData{Reason: "Stopped",
			Message: "stopped by the host; the call to " + ae.Op + " in progress was canceled"})
		a.end(PhaseStopped, nil)
		return ae
	}
	_ = a.record(chain.KindActorStop, "stop", stopData{Reason: string(ae.Reason), Op: ae.Op, Message: ae.Message})
	a.log.V(1).Info("actor failed", "actorID", a.id, "name", a.cfg.Name, "reason", ae.Reason, "message", ae.Message)
	a.end(PhaseFailed, ae)
	return ae
}

// evict fails the run with err from outside it: at once when no call is
// in progress, else by canceling the call, which then fails with err
// rather than Canceled. It returns without waiting; the first eviction's
// err is the one recorded.
func (a *Actor) evict(err *ActorError) {
	if !a.evicted.CompareAndSwap(nil, err) {
		return
	}
	go func() {
		select {
		case a.callLock <- struct{}{}:
		default:
			a.cancel()
			_ = a.acquire(context.Background())
		}
		defer a.unlock()
		if p := a.Phase(); p == PhaseRunning || p == PhaseStarting {
			_ = a.fail(err)
		}
	}()
}

// stopData is the data of an ActorStop event.
type stopData struct {
	Message string `json:"message,omitempty"`
	Op      string `json:"op,omitempty"`
	Reason  string `json:"reason"`
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
		err = a.record(chain.KindActorStop, "stop", stopData{Reason: "Shutdown"})
	}
	if err != nil {
		return a.fail(hostError("shutdown", err))
	}
	a.log.V(1).Info("actor shut itself down", "actorID", a.id, "name", a.cfg.Name)
	a.end(PhaseSucceeded, nil)
	return nil
}

// Stop stops the actor: it waits for the call in progress until ctx ends,
// then cancels it; records ActorStop with reason; closes the instance; and
// flushes and closes the chain. Stop also releases an actor that already
// ended (shutdown or failure); it is idempotent. The actor's next run is a
// new Start on its Dir. When Stop returns, the actor has no tick timer and
// no goroutine left: its mailbox's drain, if one ran, has ended (the pool's
// goroutine that ran it holds nothing of the actor's).
func (a *Actor) Stop(ctx context.Context, reason string) error {
	err := a.stop(ctx, reason)
	// The run is over and its mailbox closed and emptied, so a drain
	// finds nothing more to do once it has the call lock.
	a.mbox.drains.Wait()
	return err
}

func (a *Actor) stop(ctx context.Context, reason string) error {
	if err := a.acquire(ctx); err != nil {
		// The guest would not give the call back in time: cancel it. The
		// canceled call ends the run (reason Canceled) and unlocks.
		a.stopping.Store(true)
		a.cancel()
		_ = a.acquire(context.Background())
	}
	defer a.unlock()
	if p := a.Phase(); p == PhaseRunning || p == PhaseStarting {
		_ = a.record(chain.KindActorStop, "stop", stopData{Reason: "Stopped", Message: reason})
		a.log.V(1).Info("actor stopped", "actorID", a.id, "name", a.cfg.Name, "reason", reason)
		a.end(PhaseStopped, nil)
	}
	return a.release()
}

// release drops the actor's resources after its run: the handler's state
// (flushing partial log lines), the chain (flush and fsync), and its place
// in the engine. Called with the call lock held, or before the actor was
// ever locked.
func (a *Actor) release() error {
	a.mu.Lock()
	if a.released {
		a.mu.Unlock()
		return nil
	}
	a.released = true
	a.mu.Unlock()
	a.stopTicker()
	for _, w := range a.mbox.close() {
		a.answerLeft(w, a.notRunning(PhaseStopped))
	}
	a.e.unregister(a)
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
	a.mu.Unlock()
	a.cancel()
	a.e.mu.Lock()
	delete(a.e.actors, a)
	if c := a.component; c != nil {
		if c.users--; c.users == 0 {
			c.idleFrom = time.Now()
		}
	}
	a.e.mu.Unlock()
	if err != nil {
		return fmt.Errorf("closing the chain of actor %s: %w", a.id, err)
	}
	return nil
}
