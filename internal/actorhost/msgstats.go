package actorhost

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// MessageKind is what a message asks of its receiver: a send or a request.
type MessageKind uint8

// Kinds of messages.
const (
	KindSend MessageKind = iota
	KindRequest
	numMessageKinds
)

// MessageKinds are every kind, for whoever reports them.
var MessageKinds = [...]MessageKind{KindSend, KindRequest}

func (k MessageKind) String() string {
	if k == KindRequest {
		return "request"
	}
	return "send"
}

func (w workKind) messageKind() MessageKind {
	if w == workRequest {
		return KindRequest
	}
	return KindSend
}

// MessageResult is how a message ended, as its receiver or its sender saw
// it: a small closed set, so that it can label a metric.
type MessageResult uint8

// Results of messages.
const (
	// ResultOK: handled (received), or queued or answered (sent).
	ResultOK MessageResult = iota
	// ResultError: the handler failed or gave a request no response; the
	// request was canceled.
	ResultError
	// ResultRefused: no such actor, no handler, too large, a request
	// cycle, or the actor not running.
	ResultRefused
	// ResultMailboxFull: the receiver's mailbox was at its bound.
	ResultMailboxFull
	// ResultRateLimited: the receiver's chain budget admitted no more.
	ResultRateLimited
	// ResultTimeout: a request ran out of time (in the mailbox, or while
	// its sender waited).
	ResultTimeout
	numMessageResults
)

// MessageResults are every result, for whoever reports them.
var MessageResults = [...]MessageResult{ResultOK, ResultError, ResultRefused, ResultMailboxFull, ResultRateLimited, ResultTimeout}

var resultNames = [numMessageResults]string{"ok", "error", "refused", "mailbox_full", "rate_limited", "timeout"}

func (r MessageResult) String() string { return resultNames[r] }

// ResultOf classifies a delivery's error (nil is ResultOK).
func ResultOf(err error) MessageResult {
	switch {
	case err == nil:
		return ResultOK
	case errors.Is(err, ErrMailboxFull):
		return ResultMailboxFull
	case errors.Is(err, ErrRateLimited):
		return ResultRateLimited
	case errors.Is(err, context.DeadlineExceeded):
		return ResultTimeout
	case errors.Is(err, ErrNoSuchActor), errors.Is(err, ErrNoHandler), errors.Is(err, ErrMessageTooLarge),
		errors.Is(err, ErrRequestCycle), errors.Is(err, ErrActorNotRunning), errors.Is(err, ErrNamespaceNotAllowed):
		return ResultRefused
	}
	return ResultError
}

// MessageStats counts one actor's messages: those it received (counted
// when handled, or when refused on arrival) and those it sent (counted
// when the send or request returned), by kind and result. It is safe for
// concurrent use and costs one atomic add per message. A host hands the
// same MessageStats to every run of an actor (ActorConfig.Stats), so the
// counts go on across restarts on that host.
type MessageStats struct {
	in, out [numMessageKinds][numMessageResults]atomic.Uint64
}

// Received is how many messages of kind k the actor received that ended
// with r.
func (s *MessageStats) Received(k MessageKind, r MessageResult) uint64 { return s.in[k][r].Load() }

// Sent is how many messages of kind k the actor sent that ended with r.
func (s *MessageStats) Sent(k MessageKind, r MessageResult) uint64 { return s.out[k][r].Load() }

func (s *MessageStats) received(k MessageKind, err error) { s.in[k][ResultOf(err)].Add(1) }
func (s *MessageStats) sent(k MessageKind, err error)     { s.out[k][ResultOf(err)].Add(1) }

// MessageTimings receives the times of every handled message: delivery is
// from its arrival in the mailbox to its handler's start (the wait behind
// the work before it), handling the handler's call. Called on the actor's
// drain goroutine, it must be quick and must not block (a Prometheus
// histogram's Observe is).
type MessageTimings interface {
	ObserveMessage(kind MessageKind, delivery, handling time.Duration)
}

// monoBase anchors the message timings' clock: time.Since(monoBase) reads
// the monotonic clock alone, half of what time.Now reads (the wall clock
// too), and a message's timings take up to three readings.
var monoBase = time.Now()

// monoNow is the monotonic time since monoBase.
func monoNow() time.Duration { return time.Since(monoBase) }

// MailboxState is what an actor's mailbox holds now.
type MailboxState struct {
	// Messages and Bytes wait; MaxMessages and MaxBytes are its bounds.
	Messages, Bytes, MaxMessages, MaxBytes int
	// FullSince is when the mailbox, full, first refused a message, if it
	// has not drained to half its bounds since; zero otherwise.
	FullSince time.Time
}

// Mailbox is what the actor's mailbox holds now.
func (a *Actor) Mailbox() MailboxState {
	m := &a.mbox
	m.mu.Lock()
	defer m.mu.Unlock()
	return MailboxState{Messages: m.queued(), Bytes: m.bytes, MaxMessages: m.maxItems, MaxBytes: m.maxBytes, FullSince: m.fullSince}
}

// Stats are the actor's message counts: ActorConfig.Stats.
func (a *Actor) Stats() *MessageStats { return a.cfg.Stats }
