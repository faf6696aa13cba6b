package v1alpha1

// ConditionStateLost, written by the host, is True once a run started a
// new chain segment on a node that does not hold the actor's saved state
// (the actor moved): init got spec.initialState, not the state the actor
// had at the head it continues. Its message names the node that keeps the
// old state. With an archive the host restores the state instead
// (docs/archive.md) and sets this only when the archive holds none of the
// actor; nothing sets it back.
const ConditionStateLost = "StateLost"

// ReasonNoStateOnNode (StateLost=True): the node a new chain segment
// started on holds no saved state of the actor.
const ReasonNoStateOnNode = "NoStateOnNode"

// Condition reasons the host writes that actor_helpers.go and protocol.go
// do not list (its Event reasons are in event_reasons.go). The host's Ready reasons for a failure are the
// engine's (internal/actorhost's Reason), mapped one to one to these names
// or the ones of actor_helpers.go.
const (
	// ReasonComponentSourceMissing (Ready=False), written by the host: the
	// ConfigMap (or its key) that spec.component names does not exist yet.
	// The actor waits, phase unchanged, and starts as soon as it appears;
	// as with ReasonEnvSourceMissing, it is no failure: the manager neither
	// restarts nor moves it.
	ReasonComponentSourceMissing = "ComponentSourceMissing"
	// ReasonTickFailed (Ready=False): the actor's tick export returned an
	// error.
	ReasonTickFailed = "TickFailed"
	// ReasonHandlerFailed (Ready=False): the actor's handle-send or
	// handle-request export returned an error.
	ReasonHandlerFailed = "HandlerFailed"
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
	// ReasonChainRateLimit (Ready=False): the actor appended to its chain
	// faster than spec.limits' chainBytesPerSecond or chainEventsPerSecond
	// (or the host's node-wide budget) allows, until a call would have
	// waited past its deadline.
	ReasonChainRateLimit = "ChainRateLimit"
	// ReasonChainSizeLimit (Ready=False): the actor's chain on its node
	// reached spec.limits.maxChainBytes.
	ReasonChainSizeLimit = "ChainSizeLimit"
	// ReasonDiskPressure (Ready=False): the free space of the host's data
	// directory is below its watermark. A running actor whose append it
	// refused fails with it; an actor about to start waits, phase
	// unchanged, and starts once space returns: as with
	// ReasonEnvSourceMissing, the wait is no failure.
	ReasonDiskPressure = "DiskPressure"
)
