package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/troupe-dev/troupe/internal/actorhost"
)

// errorBody is the message protocol's error: the same JSON as troupe run's
// socket answers, so one client reads both.
type errorBody struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
}

// deliveryStatuses maps delivery errors to the protocol's statuses and
// reasons, in the order they are tried (the socket's table,
// cmd/troupe/socket.go).
var deliveryStatuses = []struct {
	kind   error
	status int
	reason string
}{
	{actorhost.ErrNoSuchActor, http.StatusNotFound, "NoSuchActor"},
	{actorhost.ErrActorNotRunning, http.StatusConflict, "ActorNotRunning"},
	{actorhost.ErrNoHandler, http.StatusConflict, "NoHandler"},
	{actorhost.ErrMailboxFull, http.StatusTooManyRequests, "MailboxFull"},
	{actorhost.ErrRateLimited, http.StatusTooManyRequests, "RateLimited"},
	{actorhost.ErrMessageTooLarge, http.StatusRequestEntityTooLarge, "MessageTooLarge"},
	{actorhost.ErrNoResponse, http.StatusUnprocessableEntity, "NoResponse"},
	{actorhost.ErrRequestCycle, http.StatusLoopDetected, "RequestCycle"},
	{context.DeadlineExceeded, http.StatusGatewayTimeout, "Timeout"},
}

// StatusError is a delivery error that already carries the protocol's
// status and reason (a host's answer relayed as it came).
type StatusError struct {
	Status int
	Reason string
	Msg    string
}

func (e *StatusError) Error() string { return e.Msg }

// deliveryStatus is err's HTTP status and reason.
func deliveryStatus(err error) (int, string) {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status, se.Reason
	}
	var he *actorhost.HandlerError
	if errors.As(err, &he) {
		return http.StatusUnprocessableEntity, "HandlerFailed"
	}
	for _, m := range deliveryStatuses {
		if errors.Is(err, m.kind) {
			return m.status, m.reason
		}
	}
	if errors.Is(err, context.Canceled) {
		return 499, "Canceled"
	}
	return http.StatusBadGateway, "Internal"
}

func writeError(w http.ResponseWriter, status int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Error: msg, Reason: reason})
}
