package chain

import "encoding/hex"

// Kind classifies an event. The first four are the seed specification's
// kinds; the rest mark an actor's lifecycle.
type Kind string

const (
	// KindRuntimeOperation records a runtime call that returns information
	// (get-actor-id, get-env, get-system-info, shutdown, ...).
	KindRuntimeOperation Kind = "RuntimeOperation"
	// KindLog records a log call: level and message.
	KindLog Kind = "LogEvent"
	// KindMetric records a record-metric call: name and value.
	KindMetric Kind = "MetricEvent"
	// KindCustom records a record-event call: type and data.
	KindCustom Kind = "CustomEvent"

	// KindActorStart is the first event of every run of an actor.
	KindActorStart Kind = "ActorStart"
	// KindInitCall records the call into the actor's init export.
	KindInitCall Kind = "InitCall"
	// KindInitResult records init's result, with a digest of the new state.
	KindInitResult Kind = "InitResult"
	// KindShutdown records that the actor asked to stop, with its data.
	KindShutdown Kind = "Shutdown"
	// KindActorStop records that the host stopped the actor, and why.
	KindActorStop Kind = "ActorStop"
	// KindRestart records a restart from saved state.
	KindRestart Kind = "ActorRestart"
	// KindTick records a call of the actor's optional tick export that
	// changed its state or made runtime calls; idle ticks are not recorded.
	KindTick Kind = "ActorTick"
	// KindSegmentStart opens a new segment of a chain that continues a head
	// recorded elsewhere (an actor moved to another host); its data names
	// the previous head and length.
	KindSegmentStart Kind = "SegmentStart"

	// Messages between actors (wit/theater-message.wit). Both sides record,
	// tied by the message's id; none is a lifecycle event (they go through
	// group commit like runtime calls).
	//
	// KindMessageSent records, on the sender, a send: target, size,
	// digest, traceparent, and whether the target's mailbox took it.
	KindMessageSent Kind = "MessageSent"
	// KindRequestSent records, on the sender, a request as it leaves.
	KindRequestSent Kind = "RequestSent"
	// KindResponseReceived records, on the sender, a request's outcome:
	// the response's size and digest, or the error.
	KindResponseReceived Kind = "ResponseReceived"
	// KindMessageReceived records, on the receiver, a message taken from
	// its mailbox and handed to handle-send: who sent it (an actor or an
	// external caller), size, digest, traceparent.
	KindMessageReceived Kind = "MessageReceived"
	// KindRequestReceived records, on the receiver, a request handed to
	// handle-request.
	KindRequestReceived Kind = "RequestReceived"
	// KindHandlerResult records, on the receiver, what handle-send or
	// handle-request returned: the outcome, the new state's digest and,
	// for a request, the response's size and digest.
	KindHandlerResult Kind = "HandlerResult"
)

// IsLifecycle reports whether events of this kind mark a lifecycle
// transition. A durable chain fsyncs at every such event, except that
// those that open a start (SegmentStart, ActorStart, ActorRestart,
// InitCall) are fsynced with the one that ends it, in group-commit mode.
func (k Kind) IsLifecycle() bool {
	switch k {
	case KindActorStart, KindInitCall, KindInitResult, KindShutdown,
		KindActorStop, KindRestart, KindSegmentStart:
		return true
	}
	return false
}

// opensStart reports whether events of this kind open an actor's start
// (a SegmentStart begins a moved or restored actor's chain): a durable
// group-commit chain writes them at once but fsyncs them with the event
// that ends the start (InitResult, or the run's failure or stop), not on
// their own.
func (k Kind) opensStart() bool {
	switch k {
	case KindSegmentStart, KindActorStart, KindRestart, KindInitCall:
		return true
	}
	return false
}

// HashSize is the size of an event hash (SHA-256).
const HashSize = 32

// Hash is the SHA-256 of an event's canonical encoding. The zero Hash is the
// parent of the first event of a chain.
type Hash [HashSize]byte

// String returns the hash in lowercase hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short returns the first 12 hex digits, as printed in kubectl columns.
func (h Hash) Short() string { return h.String()[:12] }

// IsZero reports whether h is the zero hash.
func (h Hash) IsZero() bool { return h == Hash{} }

// Event is one entry of a chain.
type Event struct {
	// Seq is the event's position in the chain, starting at 0.
	Seq uint64
	// Parent is the hash of the previous event; zero for the first.
	Parent Hash
	// Kind classifies the event.
	Kind Kind
	// Op names the operation, e.g. "get-env" or "init".
	Op string
	// Time is when the event was recorded, in nanoseconds since the Unix epoch.
	Time int64
	// Data holds the operation's inputs and result, usually a JSON object.
	Data []byte
	// Hash is SHA-256 over the canonical encoding of all the fields above.
	Hash Hash
}
