// Command abiactor exercises every function of the theater SDK for the SDK's
// own tests; MODE (an env variable) picks what init does, TICK_MODE what
// tick does.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/troupe-dev/troupe/sdk/theater"
	_ "github.com/troupe-dev/troupe/sdk/theater/messages"
	_ "github.com/troupe-dev/troupe/sdk/theater/ticker"
)

func init() {
	theater.OnInit(run)
	theater.OnTick(tick)
	theater.OnSend(func(state []byte, hasState bool, msg []byte) ([]byte, error) {
		if string(msg) == "fail" {
			return nil, errors.New("send handler refused " + string(msg))
		}
		return append(state, msg...), nil
	})
	theater.OnRequest(func(state []byte, hasState bool, requestID string, data []byte) ([]byte, []byte, error) {
		switch string(data) {
		case "fail":
			return nil, nil, errors.New("request handler refused " + requestID)
		case "none":
			return state, nil, nil
		}
		return state, []byte(requestID + ":" + string(data)), nil
	})
}

// tick: TICK_MODE count (the default) keeps a decimal count in the state and
// records a "ticked" event with the time it was handed; keep returns the
// state unchanged; none returns nil; error and panic fail; stress runs the
// stress test of init.
func tick(state []byte, hasState bool, now time.Time) ([]byte, error) {
	switch mode := envOr("TICK_MODE", "count"); mode {
	case "count":
		n := 0
		if hasState {
			var err error
			if n, err = strconv.Atoi(string(state)); err != nil {
				return nil, fmt.Errorf("tick: state %q is not a count", state)
			}
		}
		n++
		data, err := json.Marshal(map[string]any{"count": n, "nowMs": now.UnixMilli(), "hasState": hasState})
		if err != nil {
			return nil, err
		}
		if err := theater.RecordEvent("ticked", data); err != nil {
			return nil, err
		}
		return []byte(strconv.Itoa(n)), nil
	case "keep":
		return state, nil
	case "none":
		return nil, nil
	case "error":
		return nil, fmt.Errorf("tick boom at %d", now.UnixMilli())
	case "panic":
		var m map[string]int
		m["kaboom"]++
		return nil, nil
	case "stress":
		return state, stress(theater.ActorID())
	default:
		return nil, fmt.Errorf("unknown TICK_MODE %q", mode)
	}
}

func main() {}

// Report is what MODE=report returns as its new state.
type Report struct {
	ID, IDParam, Name, Version string
	NowMillis, NowTime         int64
	Greeting                   string
	GreetingOK, MissingOK      bool
	Sys                        theater.SystemInfo
	LogOK, MetricOK, EventOK   string // "" when the call succeeded
	LogErr, MetricErr          string
	EventErr, ShutdownOK       string
	LogErrFunc                 string // RuntimeError.Func of LogErr
	State                      []byte
	HasState                   bool
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func run(state []byte, hasState bool, actorID string) ([]byte, error) {
	mode, _ := theater.Getenv("MODE")
	switch {
	case mode == "report":
		return report(state, hasState, actorID)
	case mode == "none":
		return nil, nil
	case mode == "error":
		return nil, errors.New("boom for " + actorID)
	case mode == "panic":
		var m map[string]int
		m["kaboom"]++ // a nil map write: a runtime panic, not a chosen value
		return nil, nil
	case mode == "echo":
		return state, nil
	case mode == "shutdown-none":
		return nil, theater.Shutdown(nil)
	case mode == "shutdown-empty":
		return nil, theater.Shutdown([]byte{})
	case mode == "message":
		return message()
	case mode == "stress":
		return nil, stress(actorID)
	case strings.HasPrefix(mode, "bench:"):
		n, err := strconv.Atoi(string(state))
		if err != nil {
			return nil, fmt.Errorf("bench: state %q is not a count", state)
		}
		return nil, bench(strings.TrimPrefix(mode, "bench:"), n)
	default:
		return nil, fmt.Errorf("unknown MODE %q", mode)
	}
}

// message sends and asks "peer" (and "nobody"), and returns what came
// back as its state.
func message() ([]byte, error) {
	var out struct{ SendOK, SendErr, Response, RequestErr string }
	out.SendOK = errString(theater.Send("peer", []byte("hello peer")))
	out.SendErr = errString(theater.Send("nobody", []byte("anyone?")))
	resp, err := theater.Request("peer", []byte("what time is it?"))
	out.Response = string(resp)
	var rerr *theater.RuntimeError
	if _, err := theater.Request("nobody", nil); errors.As(err, &rerr) && rerr.Func == "request" {
		out.RequestErr = rerr.Message
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

func report(state []byte, hasState bool, actorID string) ([]byte, error) {
	r := Report{
		ID:        theater.ActorID(),
		IDParam:   actorID,
		Name:      theater.ActorName(),
		Version:   theater.TheaterVersion(),
		NowMillis: int64(theater.CurrentTimeMillis()),
		NowTime:   theater.Now().UnixMilli(),
		Sys:       theater.GetSystemInfo(),
		State:     state,
		HasState:  hasState,
	}
	r.Greeting, r.GreetingOK = theater.Getenv("GREETING")
	_, r.MissingOK = theater.Getenv("MISSING")
	r.LogOK = errString(theater.Info("hello from " + r.Name))
	logErr := theater.Log("loud", "too loud")
	r.LogErr = errString(logErr)
	var rerr *theater.RuntimeError
	if errors.As(logErr, &rerr) {
		r.LogErrFunc = rerr.Func
	}
	r.MetricOK = errString(theater.RecordMetric("good_metric", 1.5))
	r.MetricErr = errString(theater.RecordMetric("bad_metric", math.NaN()))
	r.EventOK = errString(theater.RecordEvent("bytes", []byte{0, 1, 2, 255}))
	r.EventErr = errString(theater.RecordEvent("", nil))
	r.ShutdownOK = errString(theater.Shutdown([]byte("bye")))
	return json.Marshal(r)
}

// stress calls the runtime from several goroutines while producing garbage,
// so that collections start inside cabi_realloc, and checks every value that
// comes back: a buffer handed to the host and collected or moved too early
// shows up as a wrong value or a trap.
func stress(actorID string) error {
	unit, _ := theater.Getenv("BIG_UNIT")
	repeat, err := strconv.Atoi(envOr("BIG_REPEAT", "0"))
	if err != nil {
		return fmt.Errorf("BIG_REPEAT: %w", err)
	}
	want := strings.Repeat(unit, repeat)
	sysLen, err := strconv.Atoi(envOr("SYS_LEN", "0"))
	if err != nil {
		return fmt.Errorf("SYS_LEN: %w", err)
	}
	wantSys := [3]string{strings.Repeat("h", sysLen), strings.Repeat("t", sysLen), strings.Repeat("r", sysLen)}
	iters, err := strconv.Atoi(envOr("ITERATIONS", "50"))
	if err != nil {
		return fmt.Errorf("ITERATIONS: %w", err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	var sink [][]byte
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < iters; i++ {
				big, ok := theater.Getenv("BIG")
				if !ok || big != want {
					fail(fmt.Errorf("goroutine %d iteration %d: BIG came back wrong (%d bytes)", g, i, len(big)))
					return
				}
				// Three strings in one call: the host allocates the second and
				// third while the first is only referenced by its address.
				if si := theater.GetSystemInfo(); [3]string{si.Hostname, si.OSType, si.OSRelease} != wantSys {
					fail(fmt.Errorf("goroutine %d iteration %d: system info strings came back wrong", g, i))
					return
				}
				if id := theater.ActorID(); id != actorID {
					fail(fmt.Errorf("goroutine %d iteration %d: actor id %q, want %q", g, i, id, actorID))
					return
				}
				if err := theater.Log("loud", "x"); err == nil || !strings.Contains(err.Error(), "unknown log level") {
					fail(fmt.Errorf("goroutine %d iteration %d: log at level loud: %v", g, i, err))
					return
				}
				garbage := bytes.Repeat([]byte{byte(i)}, 64<<10)
				mu.Lock()
				sink = append(sink, garbage)
				if len(sink) > 16 {
					sink = sink[1:]
				}
				mu.Unlock()
				if i%10 == 0 {
					runtime.GC()
				}
				runtime.Gosched()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func bench(op string, n int) error {
	switch op {
	case "time":
		for i := 0; i < n; i++ {
			theater.CurrentTimeMillis()
		}
	case "actor-id":
		for i := 0; i < n; i++ {
			theater.ActorID()
		}
	case "getenv":
		for i := 0; i < n; i++ {
			theater.Getenv("GREETING")
		}
	case "log":
		for i := 0; i < n; i++ {
			if err := theater.Debug("benchmark line"); err != nil {
				return err
			}
		}
	case "actor-name":
		for i := 0; i < n; i++ {
			theater.ActorName()
		}
	case "log-100B":
		for i := 0; i < n; i++ {
			if err := theater.Info(hundredBytes); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unknown bench op %q", op)
	}
	return nil
}

// hundredBytes is the log-100B benchmark's message, the runtime handler's
// WAT benchmark's.
const hundredBytes = "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"

func envOr(name, def string) string {
	if v, ok := theater.Getenv(name); ok {
		return v
	}
	return def
}
