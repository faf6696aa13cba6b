package actorhost

import (
	"context"
	"errors"
	"fmt"
)

// Errors of Engine.Send and Engine.Request, for errors.Is: callers map them
// (the CLI to exit codes, the socket server to HTTP statuses). The error's
// text is what an actor's err result says, e.g. "mailbox full: counter
// holds 1024 messages / 3 MiB".
var (
	// ErrNoSuchActor: no running actor has that id or name.
	ErrNoSuchActor = errors.New("no such actor")
	// ErrMailboxFull: the target's mailbox is at its bound.
	ErrMailboxFull = errors.New("mailbox full")
	// ErrRateLimited: the target's chain budget admits no more traffic
	// now.
	ErrRateLimited = errors.New("rate limited")
	// ErrRequestCycle: the request would wait, directly or through other
	// actors, for an actor that waits for it.
	ErrRequestCycle = errors.New("request cycle")
	// ErrNoHandler: the target exports no handler for the message.
	ErrNoHandler = errors.New("no handler")
	// ErrActorNotRunning: the target has failed, stopped, or not started.
	ErrActorNotRunning = errors.New("actor not running")
	// ErrNoResponse: handle-request returned ok without a response.
	ErrNoResponse = errors.New("no response")
	// ErrMessageTooLarge: the message is over the target's bound.
	ErrMessageTooLarge = errors.New("message too large")
	// ErrNamespaceNotAllowed: the sender is an actor of another namespace
	// that the target's AcceptPolicy does not accept.
	ErrNamespaceNotAllowed = errors.New("namespace not allowed")
)

// deliveryError is one of the errors above with its own message: Error is
// the message, errors.Is finds the kind.
type deliveryError struct {
	kind error
	msg  string
}

func (e *deliveryError) Error() string { return e.msg }
func (e *deliveryError) Unwrap() error { return e.kind }

func deliveryErr(kind error, format string, args ...any) error {
	return &deliveryError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// timeoutErr is a request that ran out of time: it wraps
// context.DeadlineExceeded.
func timeoutErr(format string, args ...any) error {
	return &deliveryError{kind: context.DeadlineExceeded, msg: fmt.Sprintf(format, args...)}
}

// HandlerError is a request whose handler failed: it returned err, trapped
// or ran out of time, and the target failed with it (ActorError).
type HandlerError struct {
	// Target is the actor's id; Op "handle-request".
	Target, Op string
	// Reason is why the target failed; Message its account, scrubbed of
	// the target's secrets.
	Reason  Reason
	Message string
}

func (e *HandlerError) Error() string {
	return fmt.Sprintf("actor %s failed handling the request (%s): %s", e.Target, e.Reason, e.Message)
}

// Sender identifies who sends: an actor (ActorID, Namespace, Name) or an
// external caller (External, e.g. "troupe-cli", later a Kubernetes user).
type Sender struct {
	ActorID   string `json:"actorID,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	External  string `json:"external,omitempty"`
}

// Delivery is a message on its way to an actor. Transport-neutral: the
// engine delivers actors' messages with it, the CLI's socket server an
// external caller's, and later a host a message from another host.
type Delivery struct {
	From Sender
	// Target is an actor id, a name in From's namespace, or
	// namespace/name.
	Target string
	Msg    []byte
	// ID identifies the message on both chains; "" makes a new one.
	ID string
	// TraceParent is the W3C trace context; "" (or an invalid one)
	// starts a new trace.
	TraceParent string
	// Path is the causal path: the ids of the actors whose requests
	// this one continues, oldest first.
	Path []string
}
