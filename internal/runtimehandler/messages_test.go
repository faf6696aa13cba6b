package runtimehandler

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/limits"
	"github.com/troupe-dev/troupe/internal/traceparent"
)

// fakeMessenger records what it is handed and answers as told.
type fakeMessenger struct {
	mu       sync.Mutex
	got      []Outbound
	response []byte
	err      error
}

func (f *fakeMessenger) Send(ctx context.Context, m Outbound) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, m)
	if f.err != nil {
		return "", f.err
	}
	return "target-id", nil
}

func (f *fakeMessenger) Request(ctx context.Context, m Outbound) ([]byte, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, m)
	if f.err != nil {
		return nil, "", f.err
	}
	if f.response == nil {
		return append([]byte("echo:"), m.Msg...), "target-id", nil
	}
	return f.response, "target-id", nil
}

func withMessenger(m Messenger) harnessOpt {
	return func(o *ActorOptions) { o.Messenger = m }
}

func TestSendAndRequest(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := map[string]struct {
		fn        string // call-send or call-request
		target    string
		msg       string
		idLen     uint64 // overrides len(target) when set
		msgLen    uint64 // overrides len(msg) when set
		messenger *fakeMessenger
		noMessage bool // no messenger at all
		trace     string
		wantErr   string // "" for ok; a substring of the err result
		wantResp  string
		wantKinds []chain.Kind
		wantSent  string // the message the messenger got
	}{
		"send ok": {fn: "call-send", target: "counter", msg: "inc", messenger: &fakeMessenger{},
			wantKinds: []chain.Kind{chain.KindMessageSent}, wantSent: "inc"},
		"send refused by the engine": {fn: "call-send", target: "counter", msg: "inc",
			messenger: &fakeMessenger{err: errors.New("mailbox full: counter holds 1024 messages")},
			wantErr:   "mailbox full: counter holds 1024 messages", wantKinds: []chain.Kind{chain.KindMessageSent}, wantSent: "inc"},
		"request ok": {fn: "call-request", target: "counter", msg: "get", messenger: &fakeMessenger{},
			wantResp: "echo:get", wantKinds: []chain.Kind{chain.KindRequestSent, chain.KindResponseReceived}, wantSent: "get"},
		"request empty response": {fn: "call-request", target: "counter", msg: "", messenger: &fakeMessenger{response: []byte{}},
			wantResp: "", wantKinds: []chain.Kind{chain.KindRequestSent, chain.KindResponseReceived}, wantSent: ""},
		"request error": {fn: "call-request", target: "nobody", msg: "get", messenger: &fakeMessenger{err: errors.New("no such actor: nobody")},
			wantErr: "no such actor: nobody", wantKinds: []chain.Kind{chain.KindRequestSent, chain.KindResponseReceived}, wantSent: "get"},
		"response over the limit": {fn: "call-request", target: "counter", msg: "get",
			messenger: &fakeMessenger{response: make([]byte, limits.DefaultMaxMessageBytes+1)},
			wantErr:   "response is 1048577 bytes", wantKinds: []chain.Kind{chain.KindRequestSent, chain.KindResponseReceived}, wantSent: "get"},
		"a secret is scrubbed from what is sent": {fn: "call-send", target: "counter", msg: "pw=hunter2", messenger: &fakeMessenger{},
			wantKinds: []chain.Kind{chain.KindMessageSent}, wantSent: "pw=" + Redacted},
		"an engine error quoting a secret is scrubbed": {fn: "call-send", target: "counter", msg: "x",
			messenger: &fakeMessenger{err: errors.New("no such actor: hunter2")},
			wantErr:   "no such actor: " + Redacted, wantKinds: []chain.Kind{chain.KindMessageSent}, wantSent: "x"},
		"the trace continues the call's": {fn: "call-send", target: "counter", msg: "inc", messenger: &fakeMessenger{}, trace: parent,
			wantKinds: []chain.Kind{chain.KindMessageSent}, wantSent: "inc"},
		"no messenger": {fn: "call-send", target: "counter", msg: "inc", noMessage: true,
			wantErr: "does not deliver messages", wantKinds: []chain.Kind{chain.KindMessageSent}},
		"empty target": {fn: "call-send", target: "", msg: "inc", messenger: &fakeMessenger{},
			wantErr: "actor id is empty", wantKinds: []chain.Kind{chain.KindMessageSent}},
		"2 GiB target": {fn: "call-request", target: "x", idLen: 2 << 30, msg: "inc", messenger: &fakeMessenger{},
			wantErr: "actor id is 2147483648 bytes: the limit is 512", wantKinds: []chain.Kind{chain.KindResponseReceived}},
		"2 GiB message": {fn: "call-send", target: "counter", msg: "x", msgLen: 2 << 30, messenger: &fakeMessenger{},
			wantErr: "message is 2147483648 bytes: the limit is 1048576", wantKinds: []chain.Kind{chain.KindMessageSent}},
		"4 GiB - 1 message": {fn: "call-request", target: "counter", msg: "x", msgLen: 1<<32 - 1, messenger: &fakeMessenger{},
			wantErr: "message is 4294967295 bytes", wantKinds: []chain.Kind{chain.KindResponseReceived}},
		"target not UTF-8": {fn: "call-send", target: "a\xffb", msg: "x", messenger: &fakeMessenger{},
			wantErr: "not valid UTF-8", wantKinds: []chain.Kind{chain.KindMessageSent}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var opts []harnessOpt
			if !tc.noMessage {
				opts = append(opts, withMessenger(tc.messenger))
			}
			h := newHarness(t, "guest.wasm", opts...)
			h.actor.rememberSecret("hunter2")
			if tc.trace != "" {
				h.ctx = WithTraceParent(h.ctx, tc.trace)
			}
			ip, il := h.writeStr(argArea, tc.target)
			mp, ml := h.writeStr(argArea2, tc.msg)
			if tc.idLen != 0 {
				il = tc.idLen
			}
			if tc.msgLen != 0 {
				ml = tc.msgLen
			}
			h.mustCall(tc.fn, ip, il, mp, ml, retArea)
			errMsg, isErr := h.resultErr()
			switch {
			case tc.wantErr == "" && isErr:
				t.Fatalf("err result %q, want ok", errMsg)
			case tc.wantErr != "" && !strings.Contains(errMsg, tc.wantErr):
				t.Fatalf("err result %q (err %v), want one containing %q", errMsg, isErr, tc.wantErr)
			case tc.wantErr == "" && tc.fn == "call-request":
				if got := h.str(retArea + 4); got != tc.wantResp {
					t.Fatalf("response %q, want %q", got, tc.wantResp)
				}
			}
			var kinds []chain.Kind
			for _, e := range h.events() {
				kinds = append(kinds, e.Kind)
				if bytes.Contains(e.Data, []byte("hunter2")) {
					t.Errorf("a secret in the chain: %s", e.Data)
				}
			}
			if !equalKinds(kinds, tc.wantKinds) {
				t.Fatalf("events %v, want %v", kinds, tc.wantKinds)
			}
			_, last := h.last()
			if tc.wantErr != "" {
				if last["ok"] != false || !strings.Contains(last["error"].(string), tc.wantErr) {
					t.Errorf("last event %v, want ok false with the error", last)
				}
			} else if last["ok"] != true || last["toID"] != "target-id" {
				t.Errorf("last event %v, want ok true to target-id", last)
			}
			if tc.messenger == nil || tc.wantSent == "" && len(tc.messenger.got) == 0 {
				return
			}
			if len(tc.messenger.got) != 1 {
				t.Fatalf("the messenger got %d messages, want 1", len(tc.messenger.got))
			}
			m := tc.messenger.got[0]
			if string(m.Msg) != tc.wantSent || m.Target != tc.target || m.ID == "" || !traceparent.Valid(m.TraceParent) {
				t.Fatalf("the messenger got %+v, want %q to %q with an id and a trace", m, tc.wantSent, tc.target)
			}
			if tc.trace != "" && traceparent.TraceID(m.TraceParent) != traceparent.TraceID(tc.trace) {
				t.Errorf("trace %s does not continue %s", m.TraceParent, tc.trace)
			}
			first := h.events()[0]
			var sent map[string]any
			if err := jsonUnmarshal(first.Data, &sent); err != nil {
				t.Fatal(err)
			}
			if sent["id"] != m.ID || sent["traceparent"] != m.TraceParent || sent["sha256"] != Digest(m.Msg) || sent["bytes"] != float64(len(m.Msg)) {
				t.Errorf("first event %v does not describe the message %+v", sent, m)
			}
		})
	}
}

func equalKinds(a, b []chain.Kind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSendHostileArguments: what the canonical ABI's lifting traps on traps
// (a pointer outside memory, a misaligned return area), with nothing
// delivered and nothing recorded.
func TestSendHostileArguments(t *testing.T) {
	tests := map[string]struct {
		fn                  string
		ip, il, mp, ml, ret uint64
		want                string
	}{
		"wild target pointer":     {"call-send", 0xFFFFFFF0, 8, argArea2, 1, retArea, "actor id"},
		"wild message pointer":    {"call-request", argArea, 1, 0xFFFF0000, 1024, retArea, "message"},
		"message past memory end": {"call-send", argArea, 1, 65530, 100, retArea, "lies outside guest memory"},
		"misaligned retptr":       {"call-request", argArea, 1, argArea2, 1, retArea + 1, "not aligned"},
		"retptr outside memory":   {"call-send", argArea, 1, argArea2, 1, 0xFFFFFFFC, "return area"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := &fakeMessenger{}
			h := newHarness(t, "guest.wasm", withMessenger(m))
			h.writeStr(argArea, "c")
			h.writeStr(argArea2, "m")
			h.trapCall(tc.want, tc.fn, tc.ip, tc.il, tc.mp, tc.ml, tc.ret)
			if len(m.got) != 0 || len(h.events()) != 0 {
				t.Fatalf("a trapped call delivered %d messages and recorded %d events", len(m.got), len(h.events()))
			}
		})
	}
}

func TestMaxMessageBytesOption(t *testing.T) {
	if _, err := NewActor(ActorOptions{Chain: chain.NewMemory(chain.Options{}), MaxMessageBytes: limits.MaxMessageBytesLimit + 1}); err == nil {
		t.Fatal("a message limit above the maximum was accepted")
	}
	h := newHarness(t, "guest.wasm", withMessenger(&fakeMessenger{}), func(o *ActorOptions) { o.MaxMessageBytes = 4 })
	ip, il := h.writeStr(argArea, "c")
	mp, ml := h.writeStr(argArea2, "12345")
	h.mustCall("call-send", ip, il, mp, ml, retArea)
	if msg, isErr := h.resultErr(); !isErr || !strings.Contains(msg, "message is 5 bytes: the limit is 4") {
		t.Fatalf("result %q %v, want the message refused", msg, isErr)
	}
}
