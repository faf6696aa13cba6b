package limits

import (
	"cmp"
	"fmt"
	"time"
)

// Linear memory, in WebAssembly pages.
const (
	// PageBytes is the size of one page of linear memory.
	PageBytes = 64 << 10
	// DefaultMemoryPages is an actor's memory limit when none is given
	// (64 MiB).
	DefaultMemoryPages = 1024
	// MaxMemoryPages is wasm32's whole address space (4 GiB).
	MaxMemoryPages = 65536
)

// The deadline of every call into an actor.
const (
	DefaultCallTimeout = 5 * time.Second
	MinCallTimeout     = time.Millisecond
	// MaxCallTimeout bounds how long one call may hold its actor (and a
	// host's shutdown that waits for it).
	MaxCallTimeout = 10 * time.Minute
)

// How often a ticking actor's tick export is called.
const (
	DefaultTickInterval = time.Second
	// MinTickInterval is the shortest interval the API and `troupe run`
	// admit, and the engine ticks no faster (it raises a shorter one):
	// below it an actor would spend its host on ticks and its chain on
	// ActorTick events.
	MinTickInterval = 100 * time.Millisecond
	MaxTickInterval = time.Hour
)

// The runtime handler's limits: the default of each, and the largest value
// a manifest may set. The upper bounds keep a manifest from turning a limit
// off: every event lands in the chain and every log line in the host's log.
const (
	// DefaultMaxLogBytes bounds one log message.
	DefaultMaxLogBytes = 16 << 10
	MaxLogBytesLimit   = 1 << 20
	// DefaultMaxEventBytes bounds the data of one record-event call (and
	// of shutdown).
	DefaultMaxEventBytes = 1 << 20
	// MaxEventBytesLimit: recorded as base64 (about 11 MiB), the data
	// still fits one chain event (16 MiB).
	MaxEventBytesLimit = 8 << 20
	// DefaultMaxEventTypeBytes bounds a record-event type.
	DefaultMaxEventTypeBytes = 256
	MaxEventTypeBytesLimit   = 4 << 10
	// DefaultMaxMetricNames caps the distinct metric names one actor may
	// record.
	DefaultMaxMetricNames = 100
	MaxMetricNamesLimit   = 10000
)

// DefaultMaxStateBytes bounds the state init or tick may return.
const DefaultMaxStateBytes = 16 << 20

// An actor's disk budget (spec.limits): how fast it may append to its chain
// and write its saved state, and how large its chain may grow on a node
// (internal/diskbudget enforces them). The defaults keep a flooding actor
// to about 16 MiB of burst plus 1 MiB a second, while the examples and the
// seed's use cases (a few events a second, a few KiB each) never wait.
const (
	// DefaultChainBytesPerSecond is the byte rate of chain appends and
	// state writes together.
	DefaultChainBytesPerSecond = 1 << 20
	MaxChainBytesPerSecond     = 1 << 30
	// DefaultChainBurstBytes is how many bytes an idle actor may write at
	// once; one larger write waits for a full bucket and leaves it in debt.
	DefaultChainBurstBytes = 16 << 20
	MaxChainBurstBytes     = 1 << 30
	// DefaultChainEventsPerSecond is the rate of chain events.
	DefaultChainEventsPerSecond = 1000
	MaxChainEventsPerSecond     = 1_000_000
	// DefaultChainBurstEvents is how many events an idle actor may append
	// at once.
	DefaultChainBurstEvents = 10_000
	MaxChainBurstEvents     = 10_000_000
	// DefaultMaxChainBytes bounds an actor's chain on one node, until
	// chains can be archived: at the ~600 bytes a second of an idle
	// ticking actor that reads an env variable, about 20 days.
	DefaultMaxChainBytes = 1 << 30
	MinMaxChainBytes     = 1 << 20
	MaxMaxChainBytes     = 1 << 40
)

// A host's node-wide disk budget (cmd/host flags, the chart's host.disk
// values): what all its actors together may append and write, and the
// free space below which it starts nothing and refuses appends.
const (
	DefaultNodeChainBytesPerSecond  = 64 << 20
	DefaultNodeChainBurstBytes      = 256 << 20
	DefaultNodeChainEventsPerSecond = 100_000
	DefaultNodeChainBurstEvents     = 1_000_000
	// DefaultDiskMinFreeBytes and DefaultDiskMinFreePercent: the watermark
	// is the larger of the two. 15% stops the actors before the kubelet's
	// default hard eviction threshold (nodefs.available < 10%) is reached.
	DefaultDiskMinFreeBytes   = 1 << 30
	DefaultDiskMinFreePercent = 15
)

// CheckMemoryPages reports a memory limit outside 1..MaxMemoryPages.
func CheckMemoryPages(pages int64) error {
	return within("memory limit", pages, 1, MaxMemoryPages, " pages")
}

// CheckCallTimeout reports a call deadline outside
// MinCallTimeout..MaxCallTimeout.
func CheckCallTimeout(d time.Duration) error {
	return within("call timeout", d, MinCallTimeout, MaxCallTimeout, "")
}

func within[T cmp.Ordered](what string, v, lo, hi T, unit string) error {
	if v < lo || v > hi {
		return fmt.Errorf("%s of %v%s is outside the allowed %v to %v%s", what, v, unit, lo, hi, unit)
	}
	return nil
}

// Messages between actors (wit/theater-message.wit).
const (
	// DefaultMaxMessageBytes bounds a message an actor sends and a
	// response it gets or gives.
	DefaultMaxMessageBytes = 1 << 20
	// MaxMessageBytesLimit: a message waits in its receiver's mailbox,
	// so it stays well under the mailbox's own bound.
	MaxMessageBytesLimit = 8 << 20
	// MaxTargetBytes bounds the target a guest names: an actor id, a
	// name, or namespace/name (63 + 1 + 253 bytes at most in Kubernetes).
	MaxTargetBytes = 512

	// DefaultMailboxMessages bounds how many work items (messages,
	// requests, a tick) wait for one actor; a send to a full mailbox is
	// refused at once.
	DefaultMailboxMessages = 1024
	MaxMailboxMessages     = 1 << 20
	// DefaultMailboxBytes bounds the bytes of the messages waiting for
	// one actor.
	DefaultMailboxBytes = 16 << 20
	MaxMailboxBytes     = 1 << 30

	// DefaultRequestTimeout caps how long an actor's request waits for
	// its answer (the call's own deadline may be shorter): under the
	// default call timeout, so that a slow target fails the request, not
	// the asking call.
	DefaultRequestTimeout = 2 * time.Second
	MinRequestTimeout     = time.Millisecond
	MaxRequestTimeout     = MaxCallTimeout
)

// CheckRequestTimeout reports a request timeout outside
// MinRequestTimeout..MaxRequestTimeout.
func CheckRequestTimeout(d time.Duration) error {
	return within("request timeout", d, MinRequestTimeout, MaxRequestTimeout, "")
}

// CheckMailbox reports a mailbox bound outside its allowed range.
func CheckMailbox(messages, bytes int64) error {
	if err := within("mailbox message limit", messages, 1, MaxMailboxMessages, ""); err != nil {
		return err
	}
	return within("mailbox byte limit", bytes, 1, MaxMailboxBytes, " bytes")
}

// CheckMaxMessageBytes reports a message bound outside
// 1..MaxMessageBytesLimit.
func CheckMaxMessageBytes(n int64) error {
	return within("message size limit", n, 1, MaxMessageBytesLimit, " bytes")
}
