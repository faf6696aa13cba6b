package testutil

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/tetratelabs/wazero"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
)

// handlerHost runs a Guest under the real runtime handler, with a memory
// chain: the other side of TestFakeAndHandlerAgree.
type handlerHost struct {
	actor *runtimehandler.Actor
	chain *chain.Chain
}

func (h *handlerHost) Instantiate(ctx context.Context, r wazero.Runtime) error {
	_, err := runtimehandler.Instantiate(ctx, r)
	return err
}

func (h *handlerHost) Bind(ctx context.Context) context.Context {
	return runtimehandler.WithActor(ctx, h.actor)
}

type fixedSysInfo runtimehandler.SystemInfo

func (s fixedSysInfo) SystemInfo(context.Context) (runtimehandler.SystemInfo, error) {
	return runtimehandler.SystemInfo(s), nil
}

// newHandlerHost serves what fr serves (id, name, version, clock, system
// info, env) from the real handler.
func newHandlerHost(t *testing.T, fr *FakeRuntime) *handlerHost {
	t.Helper()
	env := runtimehandler.MapEnv{}
	fr.mu.Lock()
	for k, v := range fr.env {
		env[k] = runtimehandler.EnvValue{Value: v}
	}
	fr.mu.Unlock()
	h := &handlerHost{chain: chain.NewMemory(chain.Options{})}
	a, err := runtimehandler.NewActor(runtimehandler.ActorOptions{
		ID: fr.ID, Name: fr.Name, Version: fr.Version, Now: fr.Now, Env: env,
		SystemInfo: fixedSysInfo(fr.SystemInfo), Chain: h.chain, Logger: logr.Discard(),
		Messenger: funcMessenger(fr.Messages),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	h.actor = a
	return h
}

// funcMessenger serves the handler's messages with the fake's function.
type funcMessenger func(op, target string, msg []byte) ([]byte, error)

func (f funcMessenger) answer(op string, o runtimehandler.Outbound) ([]byte, error) {
	if f == nil {
		return nil, fmt.Errorf("no such actor: %q", o.Target)
	}
	return f(op, o.Target, o.Msg)
}

func (f funcMessenger) Send(_ context.Context, o runtimehandler.Outbound) (string, error) {
	_, err := f.answer("send", o)
	return "peer-id", err
}

func (f funcMessenger) Request(_ context.Context, o runtimehandler.Outbound) ([]byte, string, error) {
	resp, err := f.answer("request", o)
	return resp, "peer-id", err
}

// observed is what a host saw a guest do, in the fake's terms.
type observed struct {
	Calls    []string
	Logs     []LogLine
	Metrics  []Metric
	Events   []Event
	Sent     []string // op, target and the message's digest
	Shutdown struct {
		Data               []byte
		HasData, Requested bool
	}
}

func fakeObserved(fr *FakeRuntime) observed {
	o := observed{Calls: fr.Calls(), Logs: fr.Logs(), Metrics: fr.Metrics(), Events: fr.Events()}
	for _, m := range fr.SentMessages() {
		o.Sent = append(o.Sent, m.Op+" "+m.Target+" "+runtimehandler.Digest(m.Msg))
	}
	o.Shutdown.Data, o.Shutdown.HasData, o.Shutdown.Requested = fr.ShutdownRequest()
	return o
}

// handlerObserved reads the same from the handler's chain: every runtime
// call is an event whose op is the function, and a call the handler
// accepted carries no "error".
func handlerObserved(t *testing.T, h *handlerHost) observed {
	t.Helper()
	var o observed
	err := h.chain.Events(func(e chain.Event) error {
		switch e.Kind {
		case chain.KindResponseReceived:
			return nil // the second event of a request
		case chain.KindMessageSent, chain.KindRequestSent:
			var m struct{ To, Sha256 string }
			if err := json.Unmarshal(e.Data, &m); err != nil {
				return err
			}
			o.Sent = append(o.Sent, e.Op+" "+m.To+" "+m.Sha256)
		}
		o.Calls = append(o.Calls, e.Op)
		var refused struct{ Error string }
		if err := json.Unmarshal(e.Data, &refused); err != nil || refused.Error != "" {
			return err
		}
		var err error
		switch e.Kind {
		case chain.KindLog:
			var l LogLine
			err = json.Unmarshal(e.Data, &l)
			o.Logs = append(o.Logs, l)
		case chain.KindMetric:
			var m Metric
			err = json.Unmarshal(e.Data, &m)
			o.Metrics = append(o.Metrics, m)
		case chain.KindCustom:
			var ev Event
			err = json.Unmarshal(e.Data, &ev)
			o.Events = append(o.Events, ev)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	o.Shutdown.Data, o.Shutdown.HasData, o.Shutdown.Requested = h.actor.Shutdown()
	return o
}

// TestFakeAndHandlerAgree runs the same guests under FakeRuntime and under
// the real runtime handler, with the same inputs, and compares everything
// each saw and answered: the runtime calls in order, the accepted logs,
// metrics and events, the shutdown request, and init's or tick's result,
// which for these guests carries every value and error message the host
// handed back. The fake is a second, independent reading of the ABI that
// SDK tests lean on; this is what keeps it the same reading as the host's.
func TestFakeAndHandlerAgree(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the SDK's test actor with the Go toolchain")
	}
	now := time.UnixMilli(1_700_000_000_123)
	newFake := func(env map[string]string) *FakeRuntime {
		fr := &FakeRuntime{
			ID: "7d1c0e0a-1111-4222-8333-944455556666", Name: "agree", Version: "v0.0.1-agree",
			Now: func() time.Time { return now },
			SystemInfo: SystemInfo{Hostname: "node-a", OSType: "linux", OSRelease: "6.1",
				CPUCount: 3, MemoryTotal: 8 << 30, MemoryAvailable: 1 << 30, Uptime: 42},
		}
		for k, v := range env {
			fr.SetEnv(k, v)
		}
		return fr
	}
	type result struct {
		State    string // as text, so that a difference reads
		HasState bool
		Err      string
	}
	tests := map[string]struct {
		wasm     func(t *testing.T) []byte
		env      map[string]string
		state    []byte
		hasState bool
		tick     bool // call tick after init
		messages func(op, target string, msg []byte) ([]byte, error)
	}{
		"WAT actor, greeting set":   {wasm: watActor, env: map[string]string{"WAT_GREETING": "hi from env"}},
		"WAT actor, no greeting":    {wasm: watActor, state: []byte{41}, hasState: true},
		"WAT actor, bad state":      {wasm: watActor, state: []byte("too long"), hasState: true},
		"SDK actor, report":         {wasm: sdkActor, env: map[string]string{"MODE": "report", "GREETING": "héllo, wörld"}, state: []byte("prior"), hasState: true},
		"SDK actor, error":          {wasm: sdkActor, env: map[string]string{"MODE": "error"}},
		"SDK actor, init then tick": {wasm: sdkActor, env: map[string]string{"MODE": "echo", "TICK_MODE": "count"}, state: []byte("41"), hasState: true, tick: true},
		"SDK actor, messages":       {wasm: sdkActor, env: map[string]string{"MODE": "message"}, messages: peerOnly},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			wasm := tc.wasm(t)
			run := func(host Host) result {
				g := StartGuest(t, wasm, host)
				state, has, err := g.Init(context.Background(), tc.state, tc.hasState, "7d1c0e0a-1111-4222-8333-944455556666")
				if err == nil && tc.tick {
					state, has, err = g.Tick(context.Background(), state, has, now)
				}
				r := result{State: string(state), HasState: has}
				if err != nil {
					r.Err = err.Error()
				}
				return r
			}
			fr := newFake(tc.env)
			fr.Messages = tc.messages
			h := newHandlerHost(t, fr)
			fakeResult, handlerResult := run(fr), run(h)
			if !reflect.DeepEqual(fakeResult, handlerResult) {
				t.Errorf("the guest's result differs:\nfake:    %+v\nhandler: %+v", fakeResult, handlerResult)
			}
			fake, handler := fakeObserved(fr), handlerObserved(t, h)
			if len(fake.Calls) == 0 {
				t.Fatal("the guest made no runtime call: nothing was compared")
			}
			if !reflect.DeepEqual(fake, handler) {
				t.Errorf("what the hosts saw differs:\nfake:    %+v\nhandler: %+v", fake, handler)
			}
		})
	}
}

// peerOnly answers messages to "peer": a request with its message
// reversed; anything else is refused.
func peerOnly(op, target string, msg []byte) ([]byte, error) {
	if target != "peer" {
		return nil, fmt.Errorf("no such actor: %q", target)
	}
	if op == "send" {
		return nil, nil
	}
	resp := []byte(strings.Clone(string(msg)))
	slices.Reverse(resp)
	return resp, nil
}

func watActor(t *testing.T) []byte { return TestActor(t, "wat-actor") }

func sdkActor(t *testing.T) []byte { return BuildActor(t, "sdk/theater/testdata/abiactor") }
