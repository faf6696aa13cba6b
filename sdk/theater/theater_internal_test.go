//go:build !wasip1

package theater

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

func TestCallInit(t *testing.T) {
	var stack strings.Builder
	panicOutput = &stack
	t.Cleanup(func() { initFunc, panicOutput = nil, os.Stderr })
	tests := map[string]struct {
		fn        InitFunc
		wantState string
		wantErr   string
	}{
		"no OnInit says how to register": {
			fn:      nil,
			wantErr: "call theater.OnInit from a package init function",
		},
		"state and id reach the function": {
			fn: func(state []byte, hasState bool, id string) ([]byte, error) {
				if !hasState {
					return nil, errors.New("hasState is false")
				}
				return append(state, " "+id...), nil
			},
			wantState: "old a1",
		},
		"a panic becomes an error": {
			fn:      func([]byte, bool, string) ([]byte, error) { panic("kaboom") },
			wantErr: "theater: init panicked: kaboom",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			OnInit(tc.fn)
			got, err := callInit([]byte("old"), true, "a1")
			if tc.wantErr != "" {
				if strings.Contains(tc.wantErr, "panicked") && !strings.Contains(stack.String(), "goroutine") {
					t.Errorf("the panic's stack was not reported: %q", stack.String())
				}
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || got != nil {
					t.Fatalf("callInit = (%q, %v), want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.wantState {
				t.Fatalf("callInit = (%q, %v), want %q", got, err, tc.wantState)
			}
		})
	}
}

func TestCallTick(t *testing.T) {
	var stack strings.Builder
	panicOutput = &stack
	t.Cleanup(func() { tickFunc, panicOutput = nil, os.Stderr })
	tests := map[string]struct {
		fn        TickFunc
		nowMs     uint64
		wantState string
		wantErr   string
	}{
		"no OnTick says how to register": {
			wantErr: "no tick function is registered: call theater.OnTick",
		},
		"state and the host's time reach the function": {
			fn: func(state []byte, hasState bool, now time.Time) ([]byte, error) {
				if !hasState {
					return nil, errors.New("hasState is false")
				}
				return append(state, now.UTC().Format(time.RFC3339Nano)...), nil
			},
			nowMs:     1_700_000_000_123,
			wantState: "old 2023-11-14T22:13:20.123Z",
		},
		"a time past int64 is clamped, not negative": {
			fn: func(_ []byte, _ bool, now time.Time) ([]byte, error) {
				if now.UnixMilli() != math.MaxInt64 {
					return nil, fmt.Errorf("now = %d ms", now.UnixMilli())
				}
				return []byte("ok"), nil
			},
			nowMs:     math.MaxUint64,
			wantState: "ok",
		},
		"a panic becomes an error": {
			fn:      func([]byte, bool, time.Time) ([]byte, error) { panic("kaboom") },
			wantErr: "theater: tick panicked: kaboom",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			OnTick(tc.fn)
			got, err := callTick([]byte("old "), true, tc.nowMs)
			if tc.wantErr != "" {
				if strings.Contains(tc.wantErr, "panicked") && !strings.Contains(stack.String(), "theater: tick panicked: kaboom\ngoroutine") {
					t.Errorf("the panic's stack was not reported: %q", stack.String())
				}
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || got != nil {
					t.Fatalf("callTick = (%q, %v), want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.wantState {
				t.Fatalf("callTick = (%q, %v), want %q", got, err, tc.wantState)
			}
		})
	}
}

func TestTickSetupError(t *testing.T) {
	t.Cleanup(func() { tickFunc = nil })
	noop := func(s []byte, _ bool, _ time.Time) ([]byte, error) { return s, nil }
	tests := map[string]struct {
		fn      TickFunc
		linked  bool
		wantErr string // "" for none
	}{
		"neither":           {},
		"both":              {fn: noop, linked: true},
		"OnTick, no export": {fn: noop, wantErr: `add import _ "github.com/troupe-dev/troupe/sdk/theater/ticker"`},
		"export, no OnTick": {linked: true, wantErr: "no tick function is registered"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			OnTick(tc.fn)
			err := tickSetupError(tc.linked)
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("tickSetupError(%v) = %v, want %q", tc.linked, err, tc.wantErr)
			}
		})
	}
}

func TestOutsideWasmCallsFailClearly(t *testing.T) {
	errCalls := map[string]func() error{
		"Log":          func() error { return Info("x") },
		"RecordMetric": func() error { return RecordMetric("m", 1) },
		"RecordEvent":  func() error { return RecordEvent("e", nil) },
		"Shutdown":     func() error { return Shutdown(nil) },
	}
	for name, call := range errCalls {
		if err := call(); !errors.Is(err, ErrNotWasm) {
			t.Errorf("%s outside wasm = %v, want ErrNotWasm", name, err)
		}
	}
	panicCalls := map[string]func(){
		"ActorID":       func() { ActorID() },
		"Now":           func() { Now() },
		"Getenv":        func() { Getenv("X") },
		"GetSystemInfo": func() { GetSystemInfo() },
	}
	for name, call := range panicCalls {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(r.(string), "GOOS=wasip1") {
					t.Errorf("%s outside wasm panicked with %v, want a message naming GOOS=wasip1", name, r)
				}
			}()
			call()
		}()
	}
}

func TestRuntimeErrorMessage(t *testing.T) {
	err := error(&RuntimeError{Func: "log", Message: "unknown log level"})
	if got, want := err.Error(), "theater: log: unknown log level"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func TestMessagesSetupError(t *testing.T) {
	t.Cleanup(func() { sendFunc, requestFunc = nil, nil })
	send := func(s []byte, _ bool, _ []byte) ([]byte, error) { return s, nil }
	request := func(s []byte, _ bool, _ string, _ []byte) ([]byte, []byte, error) { return s, nil, nil }
	tests := map[string]struct {
		send    SendFunc
		request RequestFunc
		linked  bool
		wantErr string // "" for none
	}{
		"neither":               {},
		"both, linked":          {send: send, request: request, linked: true},
		"handlers, no exports":  {send: send, request: request, wantErr: `add import _ "github.com/troupe-dev/troupe/sdk/theater/messages"`},
		"linked, no OnSend":     {request: request, linked: true, wantErr: "no send handler is registered"},
		"linked, no OnRequest":  {send: send, linked: true, wantErr: "no request handler is registered"},
		"linked, no handler":    {linked: true, wantErr: "no send handler is registered"},
		"OnRequest, not linked": {request: request, wantErr: "does not export handle-send"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			OnSend(tc.send)
			OnRequest(tc.request)
			err := messagesSetupError(tc.linked)
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("messagesSetupError(%v) = %v, want %q", tc.linked, err, tc.wantErr)
			}
		})
	}
}

func TestCallHandlers(t *testing.T) {
	var stack strings.Builder
	panicOutput = &stack
	t.Cleanup(func() { sendFunc, requestFunc, panicOutput = nil, nil, os.Stderr })
	OnSend(func(s []byte, has bool, msg []byte) ([]byte, error) {
		if string(msg) == "panic" {
			panic("kaboom")
		}
		return append(s, msg...), nil
	})
	OnRequest(func(s []byte, has bool, rid string, data []byte) ([]byte, []byte, error) {
		if string(data) == "panic" {
			panic("kaboom")
		}
		return s, []byte(rid + ":" + string(data)), nil
	})
	if got, err := callSend([]byte("a"), true, []byte("b")); err != nil || string(got) != "ab" {
		t.Fatalf("callSend = %q, %v", got, err)
	}
	if _, err := callSend(nil, false, []byte("panic")); err == nil || err.Error() != "theater: send handler panicked: kaboom" {
		t.Fatalf("callSend of a panic = %v", err)
	}
	if st, resp, err := callRequest([]byte("s"), true, "r1", []byte("q")); err != nil || string(st) != "s" || string(resp) != "r1:q" {
		t.Fatalf("callRequest = %q, %q, %v", st, resp, err)
	}
	if _, _, err := callRequest(nil, false, "r2", []byte("panic")); err == nil || err.Error() != "theater: request handler panicked: kaboom" {
		t.Fatalf("callRequest of a panic = %v", err)
	}
	if !strings.Contains(stack.String(), "theater: handle-request panicked: kaboom\ngoroutine") {
		t.Errorf("the panic's stack was not reported: %q", stack.String())
	}
	OnSend(nil)
	OnRequest(nil)
	if _, err := callSend(nil, false, nil); err == nil {
		t.Error("callSend without a handler succeeded")
	}
	if _, _, err := callRequest(nil, false, "", nil); err == nil {
		t.Error("callRequest without a handler succeeded")
	}
	if err := Send("x", nil); !errors.Is(err, ErrNotWasm) {
		t.Errorf("Send outside wasm: %v", err)
	}
	if _, err := Request("x", nil); !errors.Is(err, ErrNotWasm) {
		t.Errorf("Request outside wasm: %v", err)
	}
}
