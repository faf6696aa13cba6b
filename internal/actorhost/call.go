package actorhost

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/troupe-dev/troupe/internal/abi"
	"github.com/troupe-dev/troupe/internal/diskbudget"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
)

// stateExport is one export of the contract that takes the actor's state
// first and returns result<tuple<option<list<u8>>>, string> (init, tick),
// shared by every actor. A new call of this shape into the actor is an
// abi.Export, a stateExport, a stateCall bound in instantiate, and a method
// that passes its own arguments to callState and records the outcome its
// way.
type stateExport struct {
	export, post abi.Export
	// op is the function's name without its interface ("init", "tick"):
	// the Op of its chain events and of its ActorErrors.
	op string
	// failed is the reason an err result fails the actor with.
	failed Reason
	// request: the result is handle-request's (abi.RequestResult), with
	// a response.
	request bool
}

func newStateExport(export, post abi.Export, failed Reason) *stateExport {
	return &stateExport{export: export, post: post, op: export.Name[strings.LastIndexByte(export.Name, '#')+1:], failed: failed}
}

// The state calls of the contract.
var (
	initExport    = newStateExport(abi.Init, abi.InitPost, ReasonInitFailed)
	tickExport    = newStateExport(abi.Tick, abi.TickPost, ReasonTickFailed)
	sendExport    = newStateExport(abi.HandleSend, abi.HandleSendPost, ReasonHandlerFailed)
	requestExport = func() *stateExport {
		x := newStateExport(abi.HandleRequest, abi.HandleRequestPost, ReasonHandlerFailed)
		x.request = true
		return x
	}()
)

// stateCall is a stateExport bound to an actor's instance: fn is nil when
// the module does not export it, postFn when it has no cabi_post.
type stateCall struct {
	*stateExport
	fn, postFn api.Function
}

// bindStateCall resolves x and its post-return with export.
func bindStateCall(export func(abi.Export) (api.Function, error), x *stateExport) (stateCall, error) {
	fn, err := export(x.export)
	if err != nil || fn == nil {
		return stateCall{}, err
	}
	post, err := export(x.post)
	if err != nil {
		return stateCall{}, err
	}
	return stateCall{stateExport: x, fn: fn, postFn: post}, nil
}

// refused is the ActorError of an err result: the guest's own message.
func (s *stateExport) refused(msg string) *ActorError {
	return &ActorError{Reason: s.failed, Op: s.op, Message: msg, Err: errors.New(msg)}
}

// callState lowers the actor's state with cabi_realloc, calls s with it
// (is-some, ptr, len) followed by args, lifts the result (before cabi_post
// may free it) and runs cabi_post. An err result comes back as out.ok false
// with the guest's message scrubbed of the secret values the actor knows:
// it reaches the chain, the status and an Event. Any other failure is the
// *ActorError the actor fails with. Called with the call lock held.
func (a *Actor) callState(ctx context.Context, s *stateCall, args ...uint64) (out stateResult, err error) {
	ctx, began := a.beginCall(ctx)
	defer a.endCall(began)
	params := make([]uint64, 3, 3+len(args))
	if a.state.hasState {
		ptr, err := a.lower(ctx, "state", a.state.state)
		if err != nil {
			return out, wrapOp(err, abi.Realloc.Name)
		}
		params[0], params[1], params[2] = 1, uint64(ptr), uint64(len(a.state.state))
	}
	res, err := a.invoke(ctx, s.op, s.fn, append(params, args...)...)
	if err != nil {
		return out, err
	}
	view, _ := a.mem.Read(0, uint32(min(memorySize(a.mem), 1<<32-1)))
	if s.request {
		out, err = decodeRequestResult(view, uint32(res[0]), a.maxState, a.maxMessage, maxInitErrorBytes, s.op)
	} else {
		out, err = decodeResult(view, uint32(res[0]), a.maxState, maxInitErrorBytes, s.op)
	}
	if err != nil {
		return out, wrapOp(err, s.op)
	}
	if s.postFn != nil {
		if _, err := a.invoke(ctx, s.post.Name, s.postFn, res[0]); err != nil {
			return out, err
		}
	}
	if !out.ok {
		out.errMsg = a.handler.Redact(out.errMsg)
	}
	return out, nil
}

// beginCall starts one call into the guest and returns its context: the
// actor's deadline, canceled too when the actor's run is canceled by a
// Stop that could not wait, and bound to the actor's runtime-handler
// state. The cabi_realloc calls that lower the call's arguments, the export
// and its cabi_post all run under it (one deadline, one registration with
// the run's context), rather than each deriving its own, which cost a
// timer and five allocations per wasm invocation. Inside a call already
// begun, it returns ctx as it is and began false. endCall(began) ends the
// call. Called with the call lock held.
func (a *Actor) beginCall(ctx context.Context) (callCtx context.Context, began bool) {
	if a.curCall != nil && ctx == a.curCall {
		return ctx, false
	}
	callCtx, a.callCancel = context.WithTimeout(ctx, a.timeout)
	a.callStop = context.AfterFunc(a.runCtx, a.callCancel)
	if dl, ok := callCtx.Deadline(); ok {
		a.deadline.Store(dl.UnixNano())
	}
	a.curCall = runtimehandler.WithActor(callCtx, a.handler)
	return a.curCall, true
}

// endCall ends the call beginCall began, if it began one.
func (a *Actor) endCall(began bool) {
	if !began {
		return
	}
	a.callStop()
	a.callCancel()
	a.curCall, a.callStop, a.callCancel = nil, nil, nil
	a.deadline.Store(0)
}

// invoke calls fn under the actor's deadline and classifies a failure.
func (a *Actor) invoke(ctx context.Context, op string, fn api.Function, params ...uint64) ([]uint64, error) {
	waited := a.budget.Waited()
	res, err := a.invokeCall(ctx, op, fn, params...)
	if err != nil {
		err = budgetTimeout(err, a.budget.Waited()-waited, a.timeout, a.budget.Limits())
	}
	return res, err
}

func (a *Actor) invokeCall(ctx context.Context, op string, fn api.Function, params ...uint64) ([]uint64, error) {
	callCtx, began := a.beginCall(ctx)
	defer a.endCall(began)
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
		return nil, classifyCallError(op, err, callCtx, a.timeout, a.limiter)
	}
	return res, nil
}

// budgetTimeout names the disk budget as the reason of a call that timed
// out after spending most of its time waiting for it: each wait fitted in
// the deadline, but together with the guest's own work they did not, and
// which of the two ran into the deadline first is chance.
func budgetTimeout(err error, waited, timeout time.Duration, l diskbudget.Limits) error {
	var ae *ActorError
	if !errors.As(err, &ae) || ae.Reason != ReasonTimeout || waited < timeout/2 {
		return err
	}
	return &ActorError{Reason: ReasonChainRateLimit, Op: ae.Op, Err: err, Message: fmt.Sprintf(
		"call exceeded its %s deadline after waiting %s of it for the actor's disk budget: it appends faster than spec.limits allows (chainBytesPerSecond %d, chainBurstBytes %d, chainEventsPerSecond %d, chainBurstEvents %d)",
		timeout, waited.Round(time.Millisecond), l.BytesPerSecond, l.BurstBytes, l.EventsPerSecond, l.BurstEvents)}
}

// lower copies b into guest memory allocated with cabi_realloc(0, 0, 1,
// len), checking the allocator's answer before writing.
func (a *Actor) lower(ctx context.Context, what string, b []byte) (ptr uint32, err error) {
	res, err := a.invoke(ctx, abi.Realloc.Name, a.realloc, 0, 0, 1, uint64(len(b)))
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

// callDeadline is the deadline of the call in progress, zero between
// calls: what bounds a wait for disk budget outside a runtime call (the
// guest's WASI output).
func (a *Actor) callDeadline() time.Time {
	if dl := a.deadline.Load(); dl != 0 {
		return time.Unix(0, dl)
	}
	return time.Time{}
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

// Call calls an exported function of the running actor under its deadline,
// for exports beyond the contract's (tests and benchmarks). A failure of
// the call fails the actor; a shutdown the guest requested during it stops
// the actor.
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
