package theater

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/debug"
	"time"
)

// InitFunc is an actor's init: it receives the state saved by the previous
// run (hasState is false the first time when the manifest has no initial
// state) and the actor's id, and returns the state to save. A nil newState
// with a nil error saves "none"; a non-nil error fails the actor with its
// message.
type InitFunc func(state []byte, hasState bool, actorID string) (newState []byte, err error)

var initFunc InitFunc

// OnInit registers the actor's init function. Call it from a package init
// function: a Go reactor (-buildmode=c-shared) runs package initializers when
// the host calls _initialize, but never runs main. A second call replaces the
// first.
func OnInit(fn InitFunc) {
	initFunc = fn
}

// TickFunc is an actor's tick: the host calls it every tick interval once
// init has returned ok, with the state init (or the previous tick) returned
// and the host's clock. It returns the state to save, like init: return
// state unchanged to keep it (nil saves "none"); a non-nil error fails the
// actor with its message. Ticks never overlap each other or init.
type TickFunc func(state []byte, hasState bool, now time.Time) (newState []byte, err error)

var tickFunc TickFunc

// OnTick registers the actor's tick function, making it a ticking actor
// (the optional export troupe:actor/ticker#tick, wit/troupe-ticker.wit).
// Call it from a package init function, like OnInit, and link the export
// into the module with
//
//	import _ "github.com/troupe-dev/troupe/sdk/theater/ticker"
//
// The export lives in that package so that actors without a tick function
// do not export one, and the host never calls them after init. Registering
// a tick function without the import (or the import without a tick
// function) makes init fail, saying which is missing. A second call
// replaces the first.
func OnTick(fn TickFunc) {
	tickFunc = fn
}

// tickerImport is the package whose import links the tick export.
const tickerImport = "github.com/troupe-dev/troupe/sdk/theater/ticker"

// tickSetupError reports a mismatch between OnTick and the tick export:
// linked says whether package ticker (the export) is in the module.
func tickSetupError(linked bool) error {
	switch {
	case tickFunc != nil && !linked:
		return errors.New(`theater: OnTick registered a tick function, but the module does not export tick: add import _ "` + tickerImport + `" to the actor`)
	case tickFunc == nil && linked:
		return errors.New("theater: package ticker exports tick, but no tick function is registered: call theater.OnTick from a package init function")
	}
	return nil
}

// ErrNotWasm is returned by runtime calls made outside a GOOS=wasip1 actor.
var ErrNotWasm = errors.New("theater: runtime functions exist only in a wasip1 actor (build with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared)")

// RuntimeError is an error result returned by the host for a runtime call; the
// message says what was wrong and what is allowed.
type RuntimeError struct {
	Func    string // the runtime function, e.g. "log"
	Message string // the host's message
}

func (e *RuntimeError) Error() string {
	return fmt.Sprintf("theater: %s: %s", e.Func, e.Message)
}

// Level is a log level; the host accepts exactly these four (case-insensitive).
type Level string

// Log levels.
const (
	LevelDebug Level = "debug"
	LevelInfo  Level = "info"
	LevelWarn  Level = "warn"
	LevelError Level = "error"
)

// SystemInfo describes the node the actor runs on.
type SystemInfo struct {
	Hostname        string
	OSType          string
	OSRelease       string
	CPUCount        uint32
	MemoryTotal     uint64 // bytes
	MemoryAvailable uint64 // bytes
	Uptime          uint64 // seconds
}

// ActorID returns the actor's stable unique id (it survives restarts and
// rescheduling).
func ActorID() string { return getString(fnActorID) }

// ActorName returns the actor's name from its manifest.
func ActorName() string { return getString(fnActorName) }

// TheaterVersion returns the version of the host running the actor.
func TheaterVersion() string { return getString(fnTheaterVersion) }

// CurrentTimeMillis returns the host's wall clock in milliseconds since the
// Unix epoch.
func CurrentTimeMillis() uint64 { return currentTime() }

// Now returns the host's wall clock as a time.Time (millisecond precision).
// Unlike time.Now, the reading is recorded in the actor's state chain.
func Now() time.Time {
	return time.UnixMilli(int64(currentTime()))
}

// Getenv returns the value of a variable the actor's manifest declares, and
// false when it is undeclared or unset. The host's own environment is never
// visible.
func Getenv(name string) (string, bool) { return getEnv(name) }

// Log writes a message to the host's log at the given level.
func Log(level Level, msg string) error { return logMessage(string(level), msg) }

// Debug logs msg at debug level.
func Debug(msg string) error { return Log(LevelDebug, msg) }

// Info logs msg at info level.
func Info(msg string) error { return Log(LevelInfo, msg) }

// Warn logs msg at warn level.
func Warn(msg string) error { return Log(LevelWarn, msg) }

// Error logs msg at error level.
func Error(msg string) error { return Log(LevelError, msg) }

// Logf formats like fmt.Sprintf and logs the result at the given level.
func Logf(level Level, format string, args ...any) error {
	return Log(level, fmt.Sprintf(format, args...))
}

// RecordMetric records a value for the named metric (Prometheus naming rules;
// NaN and infinities are rejected by the host).
func RecordMetric(name string, value float64) error { return recordMetric(name, value) }

// RecordEvent records a custom event of the given type in the state chain.
func RecordEvent(eventType string, data []byte) error { return recordEvent(eventType, data) }

// GetSystemInfo returns facts about the node the actor runs on. (It is not
// called SystemInfo because that is the name of its result type.)
func GetSystemInfo() SystemInfo { return systemInfo() }

// Shutdown asks the host to stop this actor once the current call returns.
// data is kept in the state chain; nil means none, while an empty non-nil
// slice is some(empty).
func Shutdown(data []byte) error { return shutdown(data) }

// stringFunc names a function of theater:simple/runtime that returns a
// plain string; a small integer, so the dispatch compares no strings.
type stringFunc uint8

// The functions of theater:simple/runtime that return a plain string.
const (
	fnActorID        stringFunc = iota // get-actor-id
	fnActorName                        // get-actor-name
	fnTheaterVersion                   // get-theater-version
)

// callInit runs the registered init function, turning a panic into an error
// so a bug in actor code becomes an init error result with a message instead
// of a process exit that loses it.
func callInit(state []byte, hasState bool, actorID string) (newState []byte, err error) {
	if initFunc == nil {
		return nil, errors.New("theater: no init function registered: call theater.OnInit from a package init function (main never runs in a reactor)")
	}
	defer func() {
		if r := recover(); r != nil {
			newState, err = nil, fmt.Errorf("theater: init panicked: %v", r)
			reportPanic("init", r)
		}
	}()
	return initFunc(state, hasState, actorID)
}

// callTick runs the registered tick function with the host's time, turning
// a panic into an error as callInit does.
func callTick(state []byte, hasState bool, nowMs uint64) (newState []byte, err error) {
	if tickFunc == nil {
		return nil, tickSetupError(true)
	}
	defer func() {
		if r := recover(); r != nil {
			newState, err = nil, fmt.Errorf("theater: tick panicked: %v", r)
			reportPanic("tick", r)
		}
	}()
	return tickFunc(state, hasState, time.UnixMilli(int64(min(nowMs, math.MaxInt64))))
}

// panicOutput receives the stack of a panic in init or tick: stderr, which
// the host turns into log records, since the error result carries only the
// panic value.
var panicOutput io.Writer = os.Stderr

func reportPanic(fn string, r any) {
	fmt.Fprintf(panicOutput, "theater: %s panicked: %v\n%s", fn, r, debug.Stack())
}
