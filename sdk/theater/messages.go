package theater

import (
	"errors"
	"fmt"
)

// SendFunc handles a message sent to the actor: the state in, the state to
// save out (as with init: return state unchanged to keep it, nil saves
// "none"). A non-nil error fails the actor, like a failed tick.
type SendFunc func(state []byte, hasState bool, msg []byte) (newState []byte, err error)

// RequestFunc handles a request: the state in, the state to save and the
// response out. A nil response answers the requester with an error saying
// the actor gave no response ([]byte{} is an empty response). A non-nil
// error fails the actor, and the requester gets an error.
type RequestFunc func(state []byte, hasState bool, requestID string, data []byte) (newState, response []byte, err error)

var (
	sendFunc    SendFunc
	requestFunc RequestFunc
)

// OnSend registers the actor's handler of sent messages
// (theater:simple/message-server-client#handle-send). Call it from a
// package init function, like OnInit, and link the exports with
//
//	import _ "github.com/troupe-dev/troupe/sdk/theater/messages"
//
// An actor that links them registers both OnSend and OnRequest: a message
// of the kind it would not handle would otherwise fail it. init fails,
// saying what is missing, when the two do not match.
func OnSend(fn SendFunc) { sendFunc = fn }

// OnRequest registers the actor's handler of requests
// (theater:simple/message-server-client#handle-request); see OnSend.
func OnRequest(fn RequestFunc) { requestFunc = fn }

// messagesImport is the package whose import links the handler exports.
const messagesImport = "github.com/troupe-dev/troupe/sdk/theater/messages"

// messagesSetupError reports a mismatch between the registered handlers and
// the exports: linked says whether package messages is in the module.
func messagesSetupError(linked bool) error {
	registered := sendFunc != nil || requestFunc != nil
	switch {
	case registered && !linked:
		return errors.New(`theater: OnSend or OnRequest registered a handler, but the module does not export handle-send and handle-request: add import _ "` + messagesImport + `" to the actor`)
	case linked && sendFunc == nil:
		return errors.New("theater: package messages exports handle-send, but no send handler is registered: call theater.OnSend from a package init function")
	case linked && requestFunc == nil:
		return errors.New("theater: package messages exports handle-request, but no request handler is registered: call theater.OnRequest from a package init function")
	}
	return nil
}

// Send queues msg in the mailbox of target (an actor id, a name in this
// actor's namespace, or namespace/name) and returns once it is queued, not
// handled. The error is a *RuntimeError saying why it was not (no such
// actor, mailbox full, rate limited, the target handles no messages, ...).
func Send(target string, msg []byte) error { return send(target, msg) }

// Request asks target and waits for its response, at most this call's
// remaining deadline, capped by the actor's spec.limits.requestTimeout. The
// error is a *RuntimeError: the target's failure, a timeout, no such
// actor, a request cycle (a request back to an actor that is waiting for
// this one) ...
func Request(target string, msg []byte) ([]byte, error) { return request(target, msg) }

// callSend runs the registered send handler, turning a panic into an error.
func callSend(state []byte, hasState bool, msg []byte) (newState []byte, err error) {
	if sendFunc == nil {
		return nil, messagesSetupError(true)
	}
	defer func() {
		if r := recover(); r != nil {
			newState, err = nil, fmt.Errorf("theater: send handler panicked: %v", r)
			reportPanic("handle-send", r)
		}
	}()
	return sendFunc(state, hasState, msg)
}

// callRequest runs the registered request handler, turning a panic into an
// error.
func callRequest(state []byte, hasState bool, requestID string, data []byte) (newState, response []byte, err error) {
	if requestFunc == nil {
		return nil, nil, messagesSetupError(true)
	}
	defer func() {
		if r := recover(); r != nil {
			newState, response, err = nil, nil, fmt.Errorf("theater: request handler panicked: %v", r)
			reportPanic("handle-request", r)
		}
	}()
	return requestFunc(state, hasState, requestID, data)
}
