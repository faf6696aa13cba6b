package placement

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/textutil"
)

// Host is a host pod as placement sees it.
type Host struct {
	// Name is the host pod's name (and its Lease's).
	Name string
	// Node is the node the host pod runs on.
	Node string
	// Expiry is when the host's lease runs out unless renewed; the zero
	// time when the lease was never renewed.
	Expiry time.Time
	// Capacity is the most actors the host runs.
	Capacity int
	// Load is the number of actors assigned to the host.
	Load int
	// NodeLabels are the labels of the host's Node.
	NodeLabels map[string]string
	// Taints are the taints of the host's Node.
	Taints []corev1.Taint
	// Protocol is the host Lease's ProtocolVersionAnnotation as written;
	// "" when it has none: a host older than the annotation, which speaks
	// v1alpha1.LegacyProtocolVersion.
	Protocol string
	// Memory is what the host declares of its memory; a zero Capacity
	// when it declares none (its count alone limits it).
	Memory Memory
	// Namespaces are the namespaces whose Actors the host runs, from its
	// Lease's NamespacesAnnotation; nil when it runs every namespace's (no
	// annotation). An annotation that lists no namespace, or can't be
	// read, gives an empty list that isn't nil: the host runs none.
	Namespaces []string
}

// Memory is a host's memory as its Lease declares it, in bytes.
type Memory struct {
	// Capacity is what its actors may take together.
	Capacity uint64
	// Used is what its actors held when it last renewed its Lease.
	Used uint64
	// Actors is how many actors Used covers.
	Actors int
	// PerActor is what the host expects a new actor to take.
	PerActor uint64
}

// Free is the memory left for one more actor on a host with load actors
// assigned: Capacity less Used, less PerActor for each assigned actor that
// Used does not cover yet (assigned since the host last counted). Zero
// when nothing is left.
func (m Memory) Free(load int) uint64 {
	pending := uint64(max(load-m.Actors, 0))
	taken := m.Used + pending*m.PerActor
	if taken >= m.Capacity {
		return 0
	}
	return m.Capacity - taken
}

// Fits reports whether one more actor fits a host with load actors.
func (m Memory) Fits(load int) bool {
	return m.Capacity == 0 || m.Free(load) >= m.PerActor
}

// Serves reports whether the host runs Actors of namespace ns.
func (h *Host) Serves(ns string) bool {
	return h.Namespaces == nil || slices.Contains(h.Namespaces, ns)
}

// Live reports whether the host's lease is still valid at now.
func (h *Host) Live(now time.Time) bool { return now.Before(h.Expiry) }

// Request is what an actor asks of its host.
type Request struct {
	// Namespace is the actor's: its host must serve it.
	Namespace    string
	NodeSelector map[string]string
	Tolerations  []corev1.Toleration
	// Refused names the hosts that just refused to start the actor, and
	// the resource each lacked: unfit for it in this placement whatever
	// their Lease says, which may predate the refusal.
	Refused map[string]Unfit
}

// LeaseExpiry is when a host lease runs out: renewTime (acquireTime when
// never renewed) plus leaseDurationSeconds (DefaultLeaseDurationSeconds
// when unset). The zero time when the lease carries neither time.
func LeaseExpiry(l *coordinationv1.Lease) time.Time {
	var last time.Time
	switch {
	case l.Spec.RenewTime != nil:
		last = l.Spec.RenewTime.Time
	case l.Spec.AcquireTime != nil:
		last = l.Spec.AcquireTime.Time
	default:
		return time.Time{}
	}
	d := int32(v1alpha1.DefaultLeaseDurationSeconds)
	if l.Spec.LeaseDurationSeconds != nil {
		d = *l.Spec.LeaseDurationSeconds
	}
	if d <= 0 {
		return time.Time{}
	}
	return last.Add(time.Duration(d) * time.Second)
}

// Capacity is the capacity a host lease declares: CapacityAnnotation, or
// DefaultHostCapacity when it is missing, malformed or negative.
func Capacity(l *coordinationv1.Lease) int {
	v, ok := l.Annotations[v1alpha1.CapacityAnnotation]
	if !ok {
		return v1alpha1.DefaultHostCapacity
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return v1alpha1.DefaultHostCapacity
	}
	return n
}

// MemoryFromLease reads the memory a host lease declares: its
// MemoryCapacityAnnotation and the figures that go with it. A capacity
// that is missing or no decimal number of bytes declares none; a missing
// or malformed figure beside it counts as 0.
func MemoryFromLease(l *coordinationv1.Lease) Memory {
	num := func(key string) uint64 {
		n, err := strconv.ParseUint(strings.TrimSpace(l.Annotations[key]), 10, 64)
		if err != nil {
			return 0
		}
		return n
	}
	m := Memory{Capacity: num(v1alpha1.MemoryCapacityAnnotation)}
	if m.Capacity == 0 {
		return Memory{}
	}
	m.Used, m.PerActor = num(v1alpha1.MemoryUsedAnnotation), num(v1alpha1.MemoryPerActorAnnotation)
	m.Actors = int(min(num(v1alpha1.MemoryActorsAnnotation), math.MaxInt32))
	return m
}

// HostFromLease describes the host behind lease l. nodes maps node names to
// Nodes; a host whose Node is unknown has no labels and no taints. loads
// maps host names to their number of actors.
func HostFromLease(l *coordinationv1.Lease, nodes map[string]*corev1.Node, loads map[string]int) Host {
	h := Host{
		Name:     l.Name,
		Node:     l.Annotations[v1alpha1.NodeAnnotation],
		Expiry:   LeaseExpiry(l),
		Capacity: Capacity(l),
		Load:     loads[l.Name],
		Protocol: l.Annotations[v1alpha1.ProtocolVersionAnnotation],
		Memory:   MemoryFromLease(l),
	}
	if v, ok := l.Annotations[v1alpha1.NamespacesAnnotation]; ok {
		h.Namespaces, ok = v1alpha1.SplitNamespaces(v)
		if !ok {
			h.Namespaces = []string{}
		}
	}
	if n := nodes[h.Node]; n != nil {
		h.NodeLabels = n.Labels
		h.Taints = n.Spec.Taints
	}
	return h
}

// Unfit says why a host can't take an actor, or "" when it can.
type Unfit string

// Why a host can't take an actor.
const (
	Fits              Unfit = ""
	UnfitDead         Unfit = "lease expired"
	UnfitNodeSelector Unfit = "node didn't match nodeSelector"
	UnfitTaint        Unfit = "untolerated taint"
	UnfitFull         Unfit = "full"
	UnfitProtocol     Unfit = "unknown protocol version"
	UnfitMemory       Unfit = "insufficient memory"
	UnfitNamespace    Unfit = "namespace not served"
)

// resourceReasons name, for the resources a host can run out of, the
// reason an actor waits with when every host that would take it lacks
// that one resource (NoHostError.Reason).
var resourceReasons = map[Unfit]string{
	UnfitFull:   v1alpha1.ReasonNoHost,
	UnfitMemory: v1alpha1.ReasonInsufficientMemory,
}

// ProtocolVersion reads a host's Protocol: the version it declares (0 when
// that is no version) and whether this manager speaks it, that is whether
// it lies in [v1alpha1.MinProtocolVersion, v1alpha1.ProtocolVersion].
func ProtocolVersion(declared string) (version int, known bool) {
	if declared == "" {
		version = v1alpha1.LegacyProtocolVersion
	} else if n, err := strconv.Atoi(declared); err == nil && n > 0 {
		version = n
	} else {
		return 0, false
	}
	return version, version >= v1alpha1.MinProtocolVersion && version <= v1alpha1.ProtocolVersion
}

// KnownProtocols says which protocol versions this manager speaks: "v1",
// or "v1 to v3".
func KnownProtocols() string {
	if v1alpha1.MinProtocolVersion == v1alpha1.ProtocolVersion {
		return fmt.Sprintf("v%d", v1alpha1.ProtocolVersion)
	}
	return fmt.Sprintf("v%d to v%d", v1alpha1.MinProtocolVersion, v1alpha1.ProtocolVersion)
}

// maxQuotedProtocol bounds how much of a malformed annotation a message
// quotes: it is the Lease writer's text, of any length.
const maxQuotedProtocol = 32

// ProtocolProblem says why this manager can't talk to h ("host h2 speaks
// protocol v2; this manager knows v1"), or "" when it can.
func ProtocolProblem(h *Host) string {
	v, known := ProtocolVersion(h.Protocol)
	switch {
	case known:
		return ""
	case v == 0:
		return fmt.Sprintf("host %s declares protocol %q, which is no version; this manager knows %s",
			h.Name, textutil.Truncate(h.Protocol, maxQuotedProtocol), KnownProtocols())
	}
	return fmt.Sprintf("host %s speaks protocol v%d; this manager knows %s", h.Name, v, KnownProtocols())
}

// Matches reports whether h speaks a protocol version this manager knows,
// serves r's namespace, its node satisfies r's nodeSelector and its
// NoSchedule and NoExecute taints are tolerated; capacity and liveness
// aside. A host an actor
// already runs on is kept while it Matches.
func Matches(h *Host, r Request) Unfit {
	if _, known := ProtocolVersion(h.Protocol); !known {
		return UnfitProtocol
	}
	if !h.Serves(r.Namespace) {
		return UnfitNamespace
	}
	for k, v := range r.NodeSelector {
		if got, ok := h.NodeLabels[k]; !ok || got != v {
			return UnfitNodeSelector
		}
	}
	for i := range h.Taints {
		t := &h.Taints[i]
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if !tolerated(t, r.Tolerations) {
			return UnfitTaint
		}
	}
	return Fits
}

func tolerated(t *corev1.Taint, tols []corev1.Toleration) bool {
	for i := range tols {
		// Gt/Lt tolerations are alpha in Kubernetes; like a scheduler
		// without the feature gate, they match nothing.
		if tols[i].ToleratesTaint(klog.Background(), t, false) {
			return true
		}
	}
	return false
}

// Check says whether h can take one more actor asking r at now.
func Check(h *Host, r Request, now time.Time) Unfit {
	if !h.Live(now) {
		return UnfitDead
	}
	if u := Matches(h, r); u != Fits {
		return u
	}
	if h.Load >= h.Capacity {
		return UnfitFull
	}
	if u, ok := r.Refused[h.Name]; ok {
		return u
	}
	if !h.Memory.Fits(h.Load) {
		return UnfitMemory
	}
	return Fits
}

// NoHostError says why no host could take an actor, as the scheduler does:
// "0/3 hosts available: 1 lease expired, 2 node didn't match nodeSelector".
type NoHostError struct {
	// Hosts is how many hosts were considered.
	Hosts int
	// Unfit counts the hosts by why they can't take the actor.
	Unfit map[Unfit]int
	// Protocols says, for the first few live hosts unfit for their
	// protocol version, which version they speak (ProtocolProblem).
	Protocols []string
	// Memory says, for the first few hosts unfit for their memory, how
	// much is free and how much an actor takes there.
	Memory []string
	// Namespace is the actor's; NotServed says that no host whose protocol
	// version this manager knows, live or not, serves it: no host will
	// until one is configured to (the chart's host.actorNamespaces).
	Namespace string
	NotServed bool
}

// Reason is the condition reason of an actor no host took: the reason of
// the resource every host that would take it lacks
// (v1alpha1.ReasonInsufficientMemory when all of them lack memory), or
// v1alpha1.ReasonNoHost when they lack different things or no host would
// take it at all (dead, other nodes, unknown protocol).
func (e *NoHostError) Reason() string {
	reason := ""
	for u, n := range e.Unfit {
		r, ok := resourceReasons[u]
		if !ok || n == 0 {
			continue
		}
		if reason != "" && reason != r {
			return v1alpha1.ReasonNoHost
		}
		reason = r
	}
	if reason == "" {
		return v1alpha1.ReasonNoHost
	}
	return reason
}

// Waiting reports whether some host would take the actor once one of its
// resources frees: worth looking again later even without an event.
func (e *NoHostError) Waiting() bool {
	for u, n := range e.Unfit {
		if _, ok := resourceReasons[u]; ok && n > 0 {
			return true
		}
	}
	return false
}

// MemoryProblem says how short of memory h is for one more actor.
func MemoryProblem(h *Host) string {
	return fmt.Sprintf("host %s has %s of memory free for actors, an actor takes %s there",
		h.Name, textutil.FormatBytes(h.Memory.Free(h.Load)), textutil.FormatBytes(h.Memory.PerActor))
}

// maxProtocolProblems bounds the hosts a NoHostError names for each
// problem: the message ends in a condition, which must stay short.
const maxProtocolProblems = 3

func (e *NoHostError) Error() string {
	if e.Hosts == 0 {
		return "no host: no host lease exists (is the troupe-host DaemonSet running?)"
	}
	reasons := make([]string, 0, len(e.Unfit))
	for u, n := range e.Unfit {
		reasons = append(reasons, fmt.Sprintf("%d %s", n, u))
	}
	sort.Strings(reasons)
	msg := fmt.Sprintf("0/%d hosts available: %s", e.Hosts, strings.Join(reasons, ", "))
	for _, d := range []struct {
		details []string
		of      Unfit
	}{{e.Protocols, UnfitProtocol}, {e.Memory, UnfitMemory}} {
		if len(d.details) == 0 {
			continue
		}
		msg += " (" + strings.Join(d.details, "; ")
		if more := e.Unfit[d.of] - len(d.details); more > 0 {
			msg += fmt.Sprintf("; and %d more", more)
		}
		msg += ")"
	}
	if e.NotServed {
		msg += fmt.Sprintf("; no host runs Actors of namespace %s: add it to the chart value host.actorNamespaces (the hosts' --actor-namespaces)", e.Namespace)
	}
	return msg
}

// Pick chooses the host for an actor asking r: among the hosts that pass
// Check, the least loaded, ties broken by name. It returns a *NoHostError
// when none passes.
func Pick(hosts []Host, r Request, now time.Time) (Host, error) {
	var best *Host
	unfit := map[Unfit]int{}
	var protocols, memory []string
	known, served := 0, false
	for i := range hosts {
		h := &hosts[i]
		if _, ok := ProtocolVersion(h.Protocol); ok {
			known++
			served = served || h.Serves(r.Namespace)
		}
		if u := Check(h, r, now); u != Fits {
			unfit[u]++
			if u == UnfitProtocol && len(protocols) < maxProtocolProblems {
				protocols = append(protocols, ProtocolProblem(h))
			}
			if u == UnfitMemory && len(memory) < maxProtocolProblems {
				if _, refused := r.Refused[h.Name]; refused {
					memory = append(memory, fmt.Sprintf("host %s refused to start it", h.Name))
				} else {
					memory = append(memory, MemoryProblem(h))
				}
			}
			continue
		}
		if best == nil || h.Load < best.Load || (h.Load == best.Load && h.Name < best.Name) {
			best = h
		}
	}
	if best == nil {
		return Host{}, &NoHostError{Hosts: len(hosts), Unfit: unfit, Protocols: protocols, Memory: memory,
			Namespace: r.Namespace, NotServed: known > 0 && !served}
	}
	return *best, nil
}
