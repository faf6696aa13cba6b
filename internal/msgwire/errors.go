package msgwire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/textutil"
)

// Errors of the host-to-host and gateway forms, besides actorhost's.
var (
	// ErrNotHere: the receiving host does not run the target at the
	// epoch the sender routed to. The message was NOT enqueued: the
	// sender may route again.
	ErrNotHere = errors.New("not here")
	// ErrMoving: the target is between hosts and no new assignment came
	// within the sender's bounded wait. Retriable.
	ErrMoving = errors.New("actor moving")
	// ErrNamespaceNotAllowed: the target does not accept messages from
	// the sender's namespace (spec.acceptMessagesFrom).
	ErrNamespaceNotAllowed = errors.New("namespace not allowed")
	// ErrUnauthenticated: the caller's identity could not be established.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden: the caller may not deliver this message.
	ErrForbidden = errors.New("forbidden")
	// errCanceled: the caller gave up.
	errCanceled = context.Canceled
)

// Reasons of the error bodies: stable, CamelCase.
const (
	ReasonNoSuchActor         = "NoSuchActor"
	ReasonActorNotRunning     = "ActorNotRunning"
	ReasonNoHandler           = "NoHandler"
	ReasonMailboxFull         = "MailboxFull"
	ReasonRateLimited         = "RateLimited"
	ReasonMessageTooLarge     = "MessageTooLarge"
	ReasonNoResponse          = "NoResponse"
	ReasonRequestCycle        = "RequestCycle"
	ReasonTimeout             = "Timeout"
	ReasonHandlerFailed       = "HandlerFailed"
	ReasonNotHere             = "NotHere"
	ReasonMoving              = "Moving"
	ReasonNamespaceNotAllowed = "NamespaceNotAllowed"
	ReasonUnauthenticated     = "Unauthenticated"
	ReasonForbidden           = "Forbidden"
	ReasonCanceled            = "Canceled"
	ReasonBadRequest          = "BadRequest"
	ReasonNotFound            = "NotFound"
	ReasonInternal            = "Internal"
)

// StatusClientClosed is the status of a request whose caller hung up
// (nginx's 499): nobody reads it.
const StatusClientClosed = 499

// ErrorBody is the JSON of every error the protocol answers.
type ErrorBody struct {
	// Error is the message, fit for the sender (the engine's text).
	Error string `json:"error"`
	// Reason is one of the Reason constants.
	Reason string `json:"reason"`
	// Handler details a HandlerFailed: the target's failure, so that the
	// client rebuilds the same *actorhost.HandlerError.
	Handler *HandlerFailure `json:"handler,omitempty"`
}

// HandlerFailure is an actorhost.HandlerError on the wire.
type HandlerFailure struct {
	Target  string `json:"target"`
	Op      string `json:"op"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// statuses maps errors to HTTP statuses and reasons, in the order they are
// tried; decoding takes the first row of a reason.
var statuses = []struct {
	kind   error
	status int
	reason string
}{
	{actorhost.ErrNoSuchActor, http.StatusNotFound, ReasonNoSuchActor},
	{actorhost.ErrActorNotRunning, http.StatusConflict, ReasonActorNotRunning},
	{actorhost.ErrNoHandler, http.StatusConflict, ReasonNoHandler},
	{actorhost.ErrMailboxFull, http.StatusTooManyRequests, ReasonMailboxFull},
	{actorhost.ErrRateLimited, http.StatusTooManyRequests, ReasonRateLimited},
	{actorhost.ErrMessageTooLarge, http.StatusRequestEntityTooLarge, ReasonMessageTooLarge},
	{actorhost.ErrNoResponse, http.StatusUnprocessableEntity, ReasonNoResponse},
	{actorhost.ErrRequestCycle, http.StatusLoopDetected, ReasonRequestCycle},
	{ErrNotHere, http.StatusServiceUnavailable, ReasonNotHere},
	{ErrMoving, http.StatusServiceUnavailable, ReasonMoving},
	{ErrNamespaceNotAllowed, http.StatusForbidden, ReasonNamespaceNotAllowed},
	{ErrUnauthenticated, http.StatusUnauthorized, ReasonUnauthenticated},
	{ErrForbidden, http.StatusForbidden, ReasonForbidden},
	{context.DeadlineExceeded, http.StatusGatewayTimeout, ReasonTimeout},
	{errCanceled, StatusClientClosed, ReasonCanceled},
}

// StatusOf is err's HTTP status and reason: an actorhost delivery error, a
// *actorhost.HandlerError, one of this package's errors, a timeout; else
// 500 Internal.
func StatusOf(err error) (status int, reason string) {
	var he *actorhost.HandlerError
	if errors.As(err, &he) {
		return http.StatusUnprocessableEntity, ReasonHandlerFailed
	}
	for _, m := range statuses {
		if errors.Is(err, m.kind) {
			return m.status, m.reason
		}
	}
	return http.StatusInternalServerError, ReasonInternal
}

// RetryAfterSeconds is the Retry-After a Moving answer carries.
const RetryAfterSeconds = 1

// WriteError answers err with its status and JSON body.
func WriteError(w http.ResponseWriter, err error) {
	status, reason := StatusOf(err)
	body := ErrorBody{Error: err.Error(), Reason: reason}
	var he *actorhost.HandlerError
	if errors.As(err, &he) {
		body.Handler = &HandlerFailure{Target: he.Target, Op: he.Op, Reason: string(he.Reason), Message: he.Message}
	}
	if reason == ReasonMoving {
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
	}
	writeBody(w, status, body)
}

// WriteReason answers with status, reason and msg: errors of the protocol
// itself (a bad path, an unreadable body) that no Go error stands for.
func WriteReason(w http.ResponseWriter, status int, reason, msg string) {
	writeBody(w, status, ErrorBody{Error: msg, Reason: reason})
}

func writeBody(w http.ResponseWriter, status int, body ErrorBody) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// RemoteError is an error answered by the other side: Error is its
// message, errors.Is finds the same kind the server's error had
// (actorhost.ErrMailboxFull, ErrNotHere, context.DeadlineExceeded, ...).
type RemoteError struct {
	// Status is the HTTP status; Reason the body's reason.
	Status int
	Reason string
	Msg    string
	kind   error
}

func (e *RemoteError) Error() string { return e.Msg }

// Unwrap is the error kind of Reason, nil for an unknown one.
func (e *RemoteError) Unwrap() error { return e.kind }

// maxQuotedBody bounds how much of a body that is not ours an error quotes.
const maxQuotedBody = 256

// DecodeError turns a non-2xx answer back into an error: the
// *actorhost.HandlerError of a HandlerFailed, else a *RemoteError whose
// kind errors.Is the server's. A body that is not the protocol's gives a
// *RemoteError of no known kind naming the status.
func DecodeError(status int, body []byte) error {
	var b ErrorBody
	if json.Unmarshal(body, &b) != nil || b.Error == "" {
		return &RemoteError{Status: status, Reason: ReasonInternal,
			Msg: fmt.Sprintf("the server answered %d %s: %s", status, http.StatusText(status),
				textutil.Truncate(strings.TrimSpace(string(body)), maxQuotedBody))}
	}
	if b.Reason == ReasonHandlerFailed && b.Handler != nil {
		return &actorhost.HandlerError{Target: b.Handler.Target, Op: b.Handler.Op,
			Reason: actorhost.Reason(b.Handler.Reason), Message: b.Handler.Message}
	}
	e := &RemoteError{Status: status, Reason: b.Reason, Msg: b.Error}
	for _, m := range statuses {
		if m.reason == b.Reason {
			e.kind = m.kind
			break
		}
	}
	return e
}

// Retriable reports whether err leaves the message undelivered and worth
// sending again after a new route: NotHere (never enqueued) and Moving.
func Retriable(err error) bool {
	return errors.Is(err, ErrNotHere) || errors.Is(err, ErrMoving)
}
