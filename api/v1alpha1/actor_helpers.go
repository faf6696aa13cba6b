package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/troupe-dev/troupe/internal/limits"
)

// Condition types of an Actor.
const (
	// ConditionScheduled is True while the actor is assigned to a live host.
	ConditionScheduled = "Scheduled"
	// ConditionReady is True while the actor's host runs it; `kubectl wait
	// --for=condition=Ready` waits for it.
	ConditionReady = "Ready"
)

// Condition reasons. Each says why a condition has its status.
const (
	// ReasonAssigned (Scheduled=True): a host was picked.
	ReasonAssigned = "Assigned"
	// ReasonNoHost (Scheduled=False): no live host matches the actor's
	// nodeSelector and tolerations, or all are full.
	ReasonNoHost = "NoHostAvailable"
	// ReasonHostLost (Scheduled=False): the assigned host's lease expired;
	// the actor is being moved.
	ReasonHostLost = "HostLost"
	// ReasonSuspended (Scheduled and Ready False): spec.suspend is true.
	ReasonSuspended = "Suspended"
	// ReasonStarting (Ready=False): the host is fetching, compiling or
	// initialising the component.
	ReasonStarting = "Starting"
	// ReasonRunning (Ready=True): init returned and the actor is live.
	ReasonRunning = "Running"
	// ReasonComponentError (Ready=False): the component could not be
	// fetched, failed its sha256 pin, or did not compile or instantiate.
	ReasonComponentError = "ComponentError"
	// ReasonInitFailed (Ready=False): init returned an error.
	ReasonInitFailed = "InitFailed"
	// ReasonTrapped (Ready=False): a call into the actor trapped.
	ReasonTrapped = "Trapped"
	// ReasonCallTimeout (Ready=False): a call ran past limits.callTimeout.
	ReasonCallTimeout = "CallTimeout"
	// ReasonBackOff (Ready=False): the actor failed and waits to restart.
	ReasonBackOff = "BackOff"
	// ReasonShutdown (Ready=False): the actor called shutdown.
	ReasonShutdown = "Shutdown"
)

// Phases of an Actor.
const (
	// PhasePending: accepted, not yet assigned to a host.
	PhasePending Phase = "Pending"
	// PhaseScheduled: assigned to a host that has not started it yet.
	PhaseScheduled Phase = "Scheduled"
	// PhaseRunning: its host runs it.
	PhaseRunning Phase = "Running"
	// PhaseSucceeded: it called shutdown and will not be restarted.
	PhaseSucceeded Phase = "Succeeded"
	// PhaseFailed: it failed (trap, timeout, init or component error).
	PhaseFailed Phase = "Failed"
	// PhaseSuspended: spec.suspend stopped it; state and chain are kept.
	PhaseSuspended Phase = "Suspended"
)

// Defaults and bounds of Limits and tickInterval, from internal/limits,
// which the engine and the CLI read too; the CRD's markers carry the same
// numbers (TestCRDMarkersMatchTheLimits holds them to these).
const (
	DefaultMaxMemoryPages int32 = limits.DefaultMemoryPages
	DefaultCallTimeout          = limits.DefaultCallTimeout
	DefaultMaxLogBytes    int32 = limits.DefaultMaxLogBytes
	DefaultMaxEventBytes  int32 = limits.DefaultMaxEventBytes
	DefaultMaxMetricNames int32 = limits.DefaultMaxMetricNames

	DefaultMaxChainBytes        int64 = limits.DefaultMaxChainBytes
	DefaultChainBytesPerSecond  int32 = limits.DefaultChainBytesPerSecond
	DefaultChainBurstBytes      int32 = limits.DefaultChainBurstBytes
	DefaultChainEventsPerSecond int32 = limits.DefaultChainEventsPerSecond
	DefaultChainBurstEvents     int32 = limits.DefaultChainBurstEvents

	DefaultMailboxMessages int32 = limits.DefaultMailboxMessages
	DefaultMailboxBytes    int32 = limits.DefaultMailboxBytes
	DefaultMaxMessageBytes int32 = limits.DefaultMaxMessageBytes
	DefaultRequestTimeout        = limits.DefaultRequestTimeout
	MaxMailboxMessages     int32 = limits.MaxMailboxMessages
	MaxMailboxBytes        int32 = limits.MaxMailboxBytes
	MaxMessageBytesLimit   int32 = limits.MaxMessageBytesLimit
	MinRequestTimeout            = limits.MinRequestTimeout
	MaxRequestTimeout            = limits.MaxRequestTimeout

	MaxMemoryPages      int32 = limits.MaxMemoryPages
	MinCallTimeout            = limits.MinCallTimeout
	MaxCallTimeout            = limits.MaxCallTimeout
	MaxLogBytesLimit    int32 = limits.MaxLogBytesLimit
	MaxEventBytesLimit  int32 = limits.MaxEventBytesLimit
	MaxMetricNamesLimit int32 = limits.MaxMetricNamesLimit

	MinMaxChainBytes        int64 = limits.MinMaxChainBytes
	MaxMaxChainBytes        int64 = limits.MaxMaxChainBytes
	MaxChainBytesPerSecond  int32 = limits.MaxChainBytesPerSecond
	MaxChainBurstBytes      int32 = limits.MaxChainBurstBytes
	MaxChainEventsPerSecond int32 = limits.MaxChainEventsPerSecond
	MaxChainBurstEvents     int32 = limits.MaxChainBurstEvents
	DefaultRestartPolicy          = RestartOnFailure
	DefaultRestorePolicy          = RestoreFromArchive
	DefaultTickInterval           = limits.DefaultTickInterval
	MinTickInterval               = limits.MinTickInterval
	MaxTickInterval               = limits.MaxTickInterval
	ShortHeadLength               = 12
)

// Default fills the zero fields of l with their defaults, as the API server
// does for an Actor it admits.
func (l *Limits) Default() {
	if l.MaxMemoryPages == 0 {
		l.MaxMemoryPages = DefaultMaxMemoryPages
	}
	if l.CallTimeout == nil {
		l.CallTimeout = &metav1.Duration{Duration: DefaultCallTimeout}
	}
	if l.MaxLogBytes == 0 {
		l.MaxLogBytes = DefaultMaxLogBytes
	}
	if l.MaxEventBytes == 0 {
		l.MaxEventBytes = DefaultMaxEventBytes
	}
	if l.MaxMetricNames == 0 {
		l.MaxMetricNames = DefaultMaxMetricNames
	}
	if l.MaxChainBytes == 0 {
		l.MaxChainBytes = DefaultMaxChainBytes
	}
	if l.ChainBytesPerSecond == 0 {
		l.ChainBytesPerSecond = DefaultChainBytesPerSecond
	}
	if l.ChainBurstBytes == 0 {
		l.ChainBurstBytes = DefaultChainBurstBytes
	}
	if l.ChainEventsPerSecond == 0 {
		l.ChainEventsPerSecond = DefaultChainEventsPerSecond
	}
	if l.ChainBurstEvents == 0 {
		l.ChainBurstEvents = DefaultChainBurstEvents
	}
	if l.MailboxMessages == 0 {
		l.MailboxMessages = DefaultMailboxMessages
	}
	if l.MailboxBytes == 0 {
		l.MailboxBytes = DefaultMailboxBytes
	}
	if l.MaxMessageBytes == 0 {
		l.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if l.RequestTimeout == nil {
		l.RequestTimeout = &metav1.Duration{Duration: DefaultRequestTimeout}
	}
}

// RequestTimeoutDuration is the cap of a request's wait, its default when
// unset.
func (l *Limits) RequestTimeoutDuration() time.Duration {
	if l.RequestTimeout == nil || l.RequestTimeout.Duration == 0 {
		return DefaultRequestTimeout
	}
	return l.RequestTimeout.Duration
}

// CallTimeoutDuration is the per-call deadline, its default when unset.
func (l *Limits) CallTimeoutDuration() time.Duration {
	if l.CallTimeout == nil || l.CallTimeout.Duration == 0 {
		return DefaultCallTimeout
	}
	return l.CallTimeout.Duration
}

// MaxMemoryBytes is the linear-memory cap in bytes.
func (l *Limits) MaxMemoryBytes() uint64 {
	pages := l.MaxMemoryPages
	if pages == 0 {
		pages = DefaultMaxMemoryPages
	}
	return uint64(pages) * 65536
}

// Default applies the defaults the API server applies at admission, for
// specs read without one (`troupe run`).
func (s *ActorSpec) Default() {
	if s.Handlers == nil {
		s.Handlers = []Handler{{Type: HandlerRuntime}}
	}
	if s.RestartPolicy == "" {
		s.RestartPolicy = DefaultRestartPolicy
	}
	if s.RestorePolicy == "" {
		s.RestorePolicy = DefaultRestorePolicy
	}
	if s.TickInterval == nil {
		s.TickInterval = &metav1.Duration{Duration: DefaultTickInterval}
	}
	s.Limits.Default()
}

// TickIntervalDuration is how often a ticking actor is called, its default
// when unset.
func (s *ActorSpec) TickIntervalDuration() time.Duration {
	if s.TickInterval == nil || s.TickInterval.Duration == 0 {
		return DefaultTickInterval
	}
	return s.TickInterval.Duration
}

// Default applies the API server's defaults to a's spec.
func (a *Actor) Default() { a.Spec.Default() }

// ManifestName is the actor's name as get-actor-name returns it:
// spec.name, or the object's name when that is empty.
func (s *ActorSpec) ManifestName(meta metav1.Object) string {
	if s.Name != "" {
		return s.Name
	}
	if meta == nil {
		return ""
	}
	return meta.GetName()
}

// ManifestName is spec.name, or metadata.name when spec.name is empty.
func (a *Actor) ManifestName() string { return a.Spec.ManifestName(&a.ObjectMeta) }

// Handler returns the handler of type t, if the spec declares one.
func (s *ActorSpec) Handler(t HandlerType) (Handler, bool) {
	for _, h := range s.Handlers {
		if h.Type == t {
			return h, true
		}
	}
	return Handler{}, false
}

// SourceKind names which field of a ComponentSource is the source.
type SourceKind string

// Component source kinds.
const (
	SourceImage     SourceKind = "image"
	SourceConfigMap SourceKind = "configMap"
	SourceURL       SourceKind = "url"
	SourcePath      SourceKind = "path"
)

// Kind is the source c names, or "" unless exactly one is set.
func (c *ComponentSource) Kind() SourceKind {
	var kinds []SourceKind
	if c.Image != "" {
		kinds = append(kinds, SourceImage)
	}
	if c.ConfigMap != nil {
		kinds = append(kinds, SourceConfigMap)
	}
	if c.URL != "" {
		kinds = append(kinds, SourceURL)
	}
	if c.Path != "" {
		kinds = append(kinds, SourcePath)
	}
	if len(kinds) != 1 {
		return ""
	}
	return kinds[0]
}

// ShortHead is the first 12 hex digits of a chain head, as status.chain
// .headShort and kubectl's Head column show it.
func ShortHead(head string) string {
	if len(head) <= ShortHeadLength {
		return head
	}
	return head[:ShortHeadLength]
}
