package v1alpha1

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Names of the manager <-> host protocol, PROTOCOL.md at the repository's
// root: the manager and the host pods never talk directly, only through
// these labels, annotations and status fields on the API server. Who writes
// which is PROTOCOL.md#ownership; a change to any of them is a new protocol
// version (PROTOCOL.md#versions).

// Protocol versions (PROTOCOL.md#versions). A host publishes the version it
// speaks in its Lease (ProtocolVersionAnnotation); the manager places
// actors only on hosts whose version lies in [MinProtocolVersion,
// ProtocolVersion].
const (
	// ProtocolVersion is the version this build speaks: what its host
	// publishes, and the newest its manager places actors on.
	ProtocolVersion = 1
	// MinProtocolVersion is the oldest version this build's manager places
	// actors on.
	MinProtocolVersion = 1
	// LegacyProtocolVersion is the version of a host whose Lease carries no
	// ProtocolVersionAnnotation: hosts of Troupe v0.1.0 published none and
	// speak version 1.
	LegacyProtocolVersion = 1
	// PeerProtocolVersion is the version of the host-to-host message
	// protocol this build speaks and sends (PeerProtocolAnnotation).
	PeerProtocolVersion = 1
)

// Field managers: each binary writes through a client that names itself in
// every write, so the API server's managedFields say which binary owns each
// field (PROTOCOL.md#ownership, checked by the integration suite).
const (
	// ManagerFieldOwner is the field manager of the manager's writes.
	ManagerFieldOwner = "troupe-manager"
	// HostFieldOwner is the field manager of the hosts' writes.
	HostFieldOwner = "troupe-host"
)

// Host leases: every host pod renews a coordination.k8s.io/v1 Lease named
// after itself in its own namespace.
const (
	// HostLeaseLabel marks a Lease as a host's heartbeat; its value is
	// HostLeaseLabelValue.
	HostLeaseLabel = "theater.troupe.dev/host"
	// HostLeaseLabelValue is HostLeaseLabel's value on host leases.
	HostLeaseLabelValue = "true"
	// NodeAnnotation on a host Lease names the node the host pod runs on.
	NodeAnnotation = "theater.troupe.dev/node"
	// CapacityAnnotation on a host Lease is the most actors the host runs,
	// a decimal integer; missing or malformed means DefaultHostCapacity.
	CapacityAnnotation = "theater.troupe.dev/capacity"
	// ProtocolVersionAnnotation on a host Lease is the protocol version the
	// host speaks, a decimal integer; missing means LegacyProtocolVersion.
	ProtocolVersionAnnotation = "theater.troupe.dev/protocol-version"
	// MemoryCapacityAnnotation on a host Lease is the memory its actors may
	// take together, bytes as a decimal integer: its memory limit (cgroup)
	// less what the host keeps for itself. Missing means the host declares
	// no memory, and only its count of actors limits what it takes.
	MemoryCapacityAnnotation = "theater.troupe.dev/memory-capacity"
	// MemoryUsedAnnotation on a host Lease is what its actors hold (linear
	// memory, instances, buffers, compiled code), bytes, when it renewed.
	MemoryUsedAnnotation = "theater.troupe.dev/memory-used"
	// MemoryActorsAnnotation on a host Lease is how many actors
	// MemoryUsedAnnotation covers: the actors assigned to the host beyond
	// these have yet to take their memory.
	MemoryActorsAnnotation = "theater.troupe.dev/memory-actors"
	// MemoryPerActorAnnotation on a host Lease is the memory the host
	// expects a new actor to take, bytes: the most one of the components
	// it runs took, as observed, plus headroom. The manager counts each
	// actor assigned beyond MemoryActorsAnnotation at this much, and places
	// one more only where this much is free.
	MemoryPerActorAnnotation = "theater.troupe.dev/memory-per-actor"
	// NamespacesAnnotation on a host Lease lists the namespaces whose
	// Actors the host runs (its --actor-namespaces, the chart's
	// host.actorNamespaces): sorted, comma-separated, no spaces. Absent
	// when the host runs every namespace's: a host of this build started
	// without the flag, or of a build older than the annotation. The host
	// may read ConfigMaps and Secrets in these namespaces only; the manager
	// places no Actor of another namespace on it, and the host refuses one
	// (ReasonNamespaceNotServed).
	NamespacesAnnotation = "theater.troupe.dev/namespaces"
	// PeerEndpointAnnotation on a host Lease is where the host takes
	// messages from its peers (other hosts, the gateway):
	// https://<podIP>:<port>, HTTP/2 with mutual TLS (internal/msgwire).
	// Absent when the host serves no peer endpoint: messages cannot reach
	// its actors from elsewhere.
	PeerEndpointAnnotation = "theater.troupe.dev/peer-endpoint"
	// PeerProtocolAnnotation on a host Lease is the version of the
	// message protocol its peer endpoint speaks, a decimal integer
	// (PeerProtocolVersion).
	PeerProtocolAnnotation = "theater.troupe.dev/peer-protocol"
	// DefaultHostCapacity is a host's capacity when its Lease declares none.
	DefaultHostCapacity = 1000
	// DefaultLeaseDurationSeconds is a host lease's duration when the host
	// is not told otherwise; it renews every third of it.
	DefaultLeaseDurationSeconds = 15
)

// Assignment: the controller names the host pod in status.hostPod (the pod's
// name; hosts live in one namespace) and in this label, so that each host
// watches only its own actors with a label selector.
const (
	// AssignedHostLabel on an Actor is the name of the host pod it is
	// assigned to; absent while unassigned or suspended.
	AssignedHostLabel = "theater.troupe.dev/assigned-host"
	// ChainFlushFinalizer keeps a deleted Actor until its host has stopped
	// it and flushed its chain (Ready=False, reason ReasonStopped), or the
	// host is gone.
	ChainFlushFinalizer = "theater.troupe.dev/chain-flush"
)

// Condition reasons of the protocol not listed in actor_helpers.go.
const (
	// ReasonStopped (Ready=False), written by the host: it stopped the
	// actor of a deleted or suspended Actor and flushed its chain;
	// status.chain is the final head. The controller then removes
	// ChainFlushFinalizer (deletion) or clears the assignment (suspend).
	ReasonStopped = "Stopped"
	// ReasonSuspending (Scheduled=False): spec.suspend is true and the
	// controller keeps the assignment until the host reports the actor
	// Stopped (with its final chain head), the host dies, or the flush
	// timeout passes; the condition's lastTransitionTime is when it began
	// to wait.
	ReasonSuspending = "Suspending"
	// ReasonEnvSourceMissing (Ready=False), written by the host: a
	// ConfigMap or Secret the actor's env needs does not exist. The host
	// keeps the run (phase unchanged) and starts the actor once it exists;
	// the manager does not restart it.
	ReasonEnvSourceMissing = "EnvSourceMissing"
	// ReasonInvalidSpec: the spec breaks a rule. Written by the manager
	// (Scheduled=False) for a rule the API server did not enforce (an
	// Actor admitted by an older CRD), and by the host (phase Failed,
	// Ready=False) when it cannot turn the spec into settings for its
	// engine; the message names the field. Either way the actor is not
	// restarted until its spec changes (a new generation).
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonInsufficientMemory: the memory ran out. Written by the manager
	// (Scheduled and Ready False, phase Pending) when every host that would
	// take the actor lacks the memory for it (its Lease's figures), and by
	// the host (Ready=False, phase unchanged) when it refuses to start the
	// actor because the start would pass its memory budget: the host waits
	// for memory to free, and the manager, reading this reason for the
	// current epoch, takes the actor off the host and places it again. It
	// is no failure: no restart, no backoff.
	ReasonInsufficientMemory = "InsufficientMemory"
)

// ReasonNamespaceNotServed: no host runs Actors of the actor's namespace.
// Written by the manager (Scheduled=False and Ready=False, phase Pending)
// when no host whose protocol it knows lists the namespace in its Lease's
// NamespacesAnnotation, and by a host (Ready=False, phase unchanged) that
// is assigned such an actor anyway (by a manager older than the
// annotation): the host may not read the namespace's ConfigMaps and Secrets
// and never tries. Either way it is no failure: the actor is not
// restarted, and it starts once a host serves its namespace (add it to the
// chart's host.actorNamespaces). Also the reason of the Warning Event each
// side records when it says so.
const ReasonNamespaceNotServed = "NamespaceNotServed"

// EventUnknownProtocol (manager, Warning), on a host Lease, not an Actor:
// the host speaks a protocol version this manager does not know, so it
// places no actor there (the other Event reasons are in event_reasons.go).
const EventUnknownProtocol = "UnknownProtocol"

// AssignedTo reports whether the actor's current assignment names host pod
// hostPod with epoch epoch: the only case in which that host may run the
// actor and write its status.
func (a *Actor) AssignedTo(hostPod string, epoch int64) bool {
	return hostPod != "" && a.Status.HostPod == hostPod && a.Status.Epoch == epoch
}

// JoinNamespaces is the NamespacesAnnotation value that lists namespaces:
// sorted, each once, comma-separated.
func JoinNamespaces(namespaces []string) string {
	return strings.Join(slices.Compact(slices.Sorted(slices.Values(namespaces))), ",")
}

// SplitNamespaces reads a NamespacesAnnotation value. ok is false when an
// entry is not a namespace name (a DNS-1123 label) or the value is empty:
// a reader that can't tell which namespaces a host serves must assume it
// serves none of them.
func SplitNamespaces(v string) (namespaces []string, ok bool) {
	if v == "" {
		return nil, false
	}
	for ns := range strings.SplitSeq(v, ",") {
		if len(validation.IsDNS1123Label(ns)) > 0 {
			return nil, false
		}
		namespaces = append(namespaces, ns)
	}
	return namespaces, true
}
