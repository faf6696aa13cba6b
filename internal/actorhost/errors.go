package actorhost

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/sys"

	"github.com/troupe-dev/troupe/internal/diskbudget"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
	"github.com/troupe-dev/troupe/internal/textutil"
)

// Reason classifies why an actor failed; the host puts it in the Actor's
// status conditions, so the values are CamelCase and stable.
type Reason string

const (
	// ReasonInvalidModule: the bytes are not a usable wasm module (not wasm,
	// bad imports, wrong export signatures).
	ReasonInvalidModule Reason = "InvalidModule"
	// ReasonMissingExport: a required export (init, memory, cabi_realloc)
	// is absent.
	ReasonMissingExport Reason = "MissingExport"
	// ReasonMemoryLimit: the actor needs more linear memory than its limit,
	// or than the host's memory budget has left (the message says which).
	ReasonMemoryLimit Reason = "MemoryLimit"
	// ReasonTimeout: a call into the actor exceeded its deadline.
	ReasonTimeout Reason = "Timeout"
	// ReasonTrap: the guest trapped (unreachable, out-of-bounds access, a
	// host function's trap, ...).
	ReasonTrap Reason = "Trap"
	// ReasonExit: the guest called WASI proc_exit.
	ReasonExit Reason = "Exited"
	// ReasonABI: the guest answered with a pointer, length, allocator
	// result or layout the canonical ABI does not allow.
	ReasonABI Reason = "ABIViolation"
	// ReasonInitFailed: init returned err.
	ReasonInitFailed Reason = "InitFailed"
	// ReasonTickFailed: the optional tick export returned err.
	ReasonTickFailed Reason = "TickFailed"
	// ReasonHandlerFailed: handle-send or handle-request returned err.
	ReasonHandlerFailed Reason = "HandlerFailed"
	// ReasonHostError: the host failed (chain or state write), not the guest.
	ReasonHostError Reason = "HostError"
	// ReasonCanceled: the host canceled a call (a stop that could not wait).
	ReasonCanceled Reason = "Canceled"
	// ReasonChainRateLimit: the actor appended to its chain faster than its
	// budget (or its node's) allows, until a call would have waited past
	// its deadline.
	ReasonChainRateLimit Reason = "ChainRateLimit"
	// ReasonChainSizeLimit: the actor's chain on the node reached its size
	// budget (spec.limits.maxChainBytes).
	ReasonChainSizeLimit Reason = "ChainSizeLimit"
	// ReasonDiskPressure: the node's data directory is below the host's
	// free-space watermark; nothing more is written.
	ReasonDiskPressure Reason = "DiskPressure"
)

// ActorError is why an actor failed: a reason code, the operation that
// failed (e.g. "init", "cabi_realloc", "instantiate") and a message fit for
// a status condition (one line, no wasm stack trace). Err keeps the
// underlying error with all its detail.
type ActorError struct {
	Reason  Reason
	Op      string
	Message string
	Err     error
}

func (e *ActorError) Error() string {
	if e.Op == "" {
		return fmt.Sprintf("%s: %s", e.Reason, e.Message)
	}
	return fmt.Sprintf("%s: %s: %s", e.Reason, e.Op, e.Message)
}

func (e *ActorError) Unwrap() error { return e.Err }

// ReasonOf returns the reason of err's ActorError, or "" when it has none.
func ReasonOf(err error) Reason {
	var ae *ActorError
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return ""
}

// knownError is err as an ActorError when it is one already, or an ABI
// violation (of op); nil for anything else.
func knownError(op string, err error) *ActorError {
	var ae *ActorError
	if errors.As(err, &ae) {
		return ae
	}
	var abi *abiError
	if errors.As(err, &abi) {
		return &ActorError{Reason: ReasonABI, Op: op, Message: abi.msg, Err: err}
	}
	var be *diskbudget.Error
	if errors.As(err, &be) {
		msg := be.Message
		var te *runtimehandler.TrapError
		if errors.As(err, &te) {
			msg = te.Func + ": " + msg // the runtime call that was refused
		}
		return &ActorError{Reason: budgetReasons[be.Kind], Op: op, Message: msg, Err: err}
	}
	return nil
}

// budgetReasons names each refusal of the disk budget.
var budgetReasons = map[diskbudget.Kind]Reason{
	diskbudget.KindRate:     ReasonChainRateLimit,
	diskbudget.KindNodeRate: ReasonChainRateLimit,
	diskbudget.KindSize:     ReasonChainSizeLimit,
	diskbudget.KindPressure: ReasonDiskPressure,
}

// wrapOp turns err into the ActorError of op: an ABI violation, or a
// failure of the host.
func wrapOp(err error, op string) error {
	if ae := knownError(op, err); ae != nil {
		return ae
	}
	return hostError(op, err)
}

// hostError is a failure of the host during op (a chain or state write):
// not the guest's doing, but it ends the run all the same.
func hostError(op string, err error) *ActorError {
	return &ActorError{Reason: ReasonHostError, Op: op, Message: err.Error(), Err: err}
}

func newActorError(reason Reason, op, format string, args ...any) *ActorError {
	msg := fmt.Sprintf(format, args...)
	return &ActorError{Reason: reason, Op: op, Message: msg, Err: errors.New(msg)}
}

// maxMessage bounds the part of a wazero error an ActorError's message
// keeps.
const maxMessage = 1024

// firstLine drops wazero's wasm stack trace and Go traces from a message,
// and cuts it to maxMessage bytes on a UTF-8 boundary (the message reaches
// a status condition and an Event).
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSuffix(s, " (recovered by wazero)")
	return textutil.Truncate(s, maxMessage)
}

// classifyCallError turns the error of a call into the guest into an
// ActorError. timeout is the call's deadline; lim the actor's memory
// limiter, which knows whether a grow was denied (nil for none).
func classifyCallError(op string, err error, ctx context.Context, timeout time.Duration, lim *memoryLimiter) *ActorError {
	if ae := knownError(op, err); ae != nil {
		return ae
	}
	refusal := lim.refusal()
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			return &ActorError{Reason: ReasonTimeout, Op: op,
				Message: fmt.Sprintf("call exceeded its %s deadline", timeout), Err: err}
		case sys.ExitCodeContextCanceled:
			return &ActorError{Reason: ReasonCanceled, Op: op,
				Message: "call canceled by the host", Err: err}
		}
		if refusal != "" {
			return memoryLimitError(op, refusal, err)
		}
		return &ActorError{Reason: ReasonExit, Op: op,
			Message: fmt.Sprintf("guest exited with code %d", exit.ExitCode()), Err: err}
	}
	if ctx != nil && ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return &ActorError{Reason: ReasonTimeout, Op: op,
				Message: fmt.Sprintf("call exceeded its %s deadline", timeout), Err: err}
		}
		return &ActorError{Reason: ReasonCanceled, Op: op, Message: "call canceled by the host", Err: err}
	}
	if refusal != "" {
		return memoryLimitError(op, refusal, err)
	}
	return &ActorError{Reason: ReasonTrap, Op: op, Message: firstLine(err.Error()), Err: err}
}

// memoryLimitError is the failure of a guest that could not cope with a
// refused grow; refusal says which limit refused it.
func memoryLimitError(op, refusal string, err error) *ActorError {
	return &ActorError{Reason: ReasonMemoryLimit, Op: op,
		Message: fmt.Sprintf("%s (%s)", refusal, firstLine(err.Error())), Err: err}
}
