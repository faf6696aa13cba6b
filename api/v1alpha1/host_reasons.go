package v1alpha1

// Condition and Event reasons the host writes that actor_helpers.go and
// protocol.go do not list. The host's Ready reasons for a failure are the
// engine's (internal/actorhost's Reason), mapped one to one to these names
// or the ones of actor_helpers.go.
const (
	// ReasonComponentSourceMissing (Ready=False), written by the host: the
	// ConfigMap (or its key) that spec.component names does not exist yet.
	// The actor waits, phase unchanged, and starts as soon as it appears.
	ReasonComponentSourceMissing = "ComponentSourceMissing"
	// ReasonTickFailed (Ready=False): the actor's tick export returned an
	// error.
	ReasonTickFailed = "TickFailed"
	// ReasonMemoryLimit (Ready=False): the actor needed more linear memory
	// than spec.limits allows.
	ReasonMemoryLimit = "MemoryLimit"
	// ReasonABIViolation (Ready=False): the actor answered a call with a
	// pointer, length or layout the canonical ABI does not allow.
	ReasonABIViolation = "ABIViolation"
	// ReasonExited (Ready=False): the actor called WASI proc_exit.
	ReasonExited = "Exited"
	// ReasonCanceled (Ready=False): the host canceled a call into the actor.
	ReasonCanceled = "Canceled"
	// ReasonHostError (Ready=False): the host failed (a chain or state
	// write, a file in the actor's directory it cannot read), not the actor.
	ReasonHostError = "HostError"
)

// Event reasons the host records on Actors. A failure is one Warning
// EventFailed, recorded by the host (its note starts with the Ready
// reason); the manager records what it decides about it (EventRestarting).
const (
	// EventStarted: the actor's init returned and it runs.
	EventStarted = "Started"
	// EventResolved: an image tag was resolved to a manifest digest, which
	// every run of this generation on this host then uses.
	EventResolved = "Resolved"
	// EventNewChainSegment: the chain on the node did not contain the head
	// in status; it was moved aside and a new segment links to that head.
	EventNewChainSegment = "NewChainSegment"
)
