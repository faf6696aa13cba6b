package v1alpha1

// MaxEventNoteBytes is the most bytes the API server accepts in an
// events.k8s.io/v1 Event's note; client-go's recorder does not cut longer
// notes, the API server rejects them and the Event is lost. Both binaries
// cut every note to it (internal/textutil.Truncate) as the last step.
const MaxEventNoteBytes = 1024

// Reasons of the Events recorded on Actors. One fact, one Event, by the
// binary that knows it: the host reports what happened to a run (started,
// failed, stopped), the manager what it decided (placed, moved, restarting,
// released). The manager's are reported by "troupe-manager", the host's by
// "troupe-host".
const (
	// EventPlaced (manager, Normal): the actor was assigned to a host.
	EventPlaced = "Placed"
	// EventMoved (manager, Normal): the actor's host died (or no longer
	// fits its spec) and it was assigned to another one.
	EventMoved = "Moved"
	// EventNoHost (manager, Warning): no live host can take the actor.
	// Once per episode: when it starts waiting for a host, not again while
	// it waits, whatever changes in the reasons.
	EventNoHost = "NoHost"
	// EventRestarting (manager, Normal): the actor's run ended and its
	// restartPolicy (or a spec change) restarts it; the note says why it
	// had stopped.
	EventRestarting = "Restarting"
	// EventSuspended (manager, Normal or Warning): spec.suspend is stopping
	// the actor, or stopped it, with or (Warning) without its final chain
	// head.
	EventSuspended = "Suspended"
	// EventFinalizerRemoved (manager, Normal or Warning): the Actor may go;
	// its chain was flushed or could not be (the note says which).
	EventFinalizerRemoved = "FinalizerRemoved"
	// EventInvalidSpec (manager or host, Warning): see ReasonInvalidSpec.
	EventInvalidSpec = "InvalidSpec"

	// EventResolved (host, Normal): an image tag was resolved to a
	// manifest digest, which every run of this generation on this host
	// then uses.
	EventResolved = "Resolved"
	// EventNewChainSegment (host, Normal): the chain on the node did not
	// contain the head in status; it was moved aside and a new segment
	// links to that head.
	EventNewChainSegment = "NewChainSegment"
	// EventStateLost (host, Warning): a new chain segment started on a
	// node without the actor's saved state; init got spec.initialState
	// (see ConditionStateLost).
	EventStateLost = "StateLost"
	// EventStarted (host, Normal): the actor's init returned and it runs.
	EventStarted = "Started"
	// EventFailed (host, Warning): the run failed or could not start; the
	// note starts with the Ready reason. The manager does not repeat it:
	// its EventRestarting says what follows.
	EventFailed = "Failed"
	// EventShutdown (host, Normal): the actor called shutdown.
	EventShutdown = "Shutdown"
	// EventStopped (host, Normal): the host stopped the actor of a deleted
	// or suspended Actor and flushed its chain.
	EventStopped = "Stopped"
	// EventEnvSourceMissing (host, Warning): see ReasonEnvSourceMissing.
	EventEnvSourceMissing = "EnvSourceMissing"
	// EventComponentSourceMissing (host, Warning): see
	// ReasonComponentSourceMissing.
	EventComponentSourceMissing = "ComponentSourceMissing"
	// EventDiskPressure (host, Warning): the actor waits to start because
	// its host's data directory is short of free space (ReasonDiskPressure).
	// Once per wait.
	EventDiskPressure = "DiskPressure"
	// EventMailboxFull (host, Warning): the actor's mailbox has refused
	// messages for a while without draining to half its bounds: its
	// handlers are slower than its senders, or stuck. At most one per
	// actor every ten minutes while it stays full.
	EventMailboxFull = "MailboxFull"
)
