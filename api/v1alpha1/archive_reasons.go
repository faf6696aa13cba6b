package v1alpha1

// Conditions, reasons and Event reasons of the archive (docs/archive.md):
// a host that archives its actors' chains and states says in each Actor's
// status how far the archive is, and whether a move started from it.

// ConditionArchived is True while the archive holds the actor's chain up
// to the recovery point; False says why not (the store is unreachable,
// or this host lost the assignment). Absent when the installation has no
// archive.
const ConditionArchived = "Archived"

// Reasons of the Archived condition.
const (
	// ReasonArchiveUpToDate: every durable event older than the recovery
	// point is in the archive.
	ReasonArchiveUpToDate = "UpToDate"
	// ReasonArchiveUnavailable: uploads fail; the actor runs on, its
	// events wait on the node, and the host retries with backoff.
	ReasonArchiveUnavailable = "ArchiveUnavailable"
	// ReasonArchiveFenced: a later epoch claimed the actor's archive; this
	// host's writes are no longer part of its history.
	ReasonArchiveFenced = "Fenced"
	// ReasonArchiveBehind: uploads succeed, but an event older than the
	// recovery point is not in the archive yet: the store, or the host's
	// upload slots, do not keep up with what the actors write.
	ReasonArchiveBehind = "Behind"
)

// ConditionArchiveGap is True when the actor moved and started from an
// archive that was behind its status head: the message names the events
// lost with the old node.
const ConditionArchiveGap = "ArchiveGap"

// Reasons of the archive's start.
const (
	// ReasonEventsLost: the run started from the archive's head, before
	// the status head (ArchiveGap).
	ReasonEventsLost = "EventsLost"
	// ReasonWaitingForNode: restorePolicy WaitForNode, and the archive is
	// behind the status head (Ready=False until it catches up).
	ReasonWaitingForNode = "WaitingForNode"
	// ReasonArchiveError: the archive could not be read or failed its
	// verification, so the actor did not start (Ready=False).
	ReasonArchiveError = "ArchiveError"
)

// Event reasons of the archive.
const (
	// EventRestored: a run started from the state and chain head the
	// archive holds.
	EventRestored = "Restored"
	// EventArchiveGap: a run started from an archive that was behind the
	// status head (Warning).
	EventArchiveGap = "ArchiveGap"
	// EventArchiveUnavailable: uploads have failed for longer than the
	// recovery point (Warning).
	EventArchiveUnavailable = "ArchiveUnavailable"
)
