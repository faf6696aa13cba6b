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
