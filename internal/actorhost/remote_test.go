package actorhost

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/troupe-dev/troupe/internal/traceparent"
)

// fakeRemote answers for the targets the engine does not run, and
// records what it was given.
type fakeRemote struct {
	mu    sync.Mutex
	got   []Delivery
	kinds []MessageKind
	err   error
}

func (r *fakeRemote) Deliver(_ context.Context, kind MessageKind, d Delivery) ([]byte, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got, r.kinds = append(r.got, d), append(r.kinds, kind)
	if r.err != nil {
		return nil, "far-id", r.err
	}
	return append([]byte("remote:"), d.Msg...), "far-id", nil
}

// TestRemoteTargets: an actor's message to a target the engine does not
// run goes to the Remote, with the sender, an id and a trace fixed, the
// causal path as it is; a local target never does; the Remote's errors
// reach the actor.
func TestRemoteTargets(t *testing.T) {
	remote := &fakeRemote{}
	e, err := NewEngine(context.Background(), EngineOptions{NoDiskCache: true, SystemInfo: fixedSystemInfo{}, Version: "test", Remote: remote})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	ctx := context.Background()
	ping := startMessenger(t, e, "ping", ActorConfig{Dir: t.TempDir(), Namespace: "ns"})
	startMessenger(t, e, "pong", ActorConfig{Dir: t.TempDir(), Namespace: "ns"})

	tests := map[string]struct {
		msg    []byte
		err    error
		want   string
		remote bool
		kind   MessageKind
	}{
		"request":      {msg: ask("far", "ehi"), want: "remote:ehi", remote: true, kind: KindRequest},
		"send":         {msg: tell("other/far", "i"), want: "ok", remote: true, kind: KindSend},
		"remote error": {msg: ask("far", "e"), err: fmt.Errorf("wrapped: %w", ErrRequestCycle), want: "wrapped: request cycle", remote: true, kind: KindRequest},
		"local target": {msg: ask("pong", "elocal"), want: "elocal"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			remote.mu.Lock()
			remote.got, remote.kinds, remote.err = nil, nil, tc.err
			remote.mu.Unlock()
			resp, err := e.Request(ctx, Delivery{From: cli, Target: "ns/ping", Msg: tc.msg, Path: nil})
			if err != nil || !strings.Contains(string(resp), tc.want) {
				t.Fatalf("ping answered %q, %v; want %q", resp, err, tc.want)
			}
			remote.mu.Lock()
			defer remote.mu.Unlock()
			if !tc.remote {
				if len(remote.got) > 0 {
					t.Fatalf("a local target went to the Remote: %+v", remote.got)
				}
				return
			}
			if len(remote.got) != 1 || remote.kinds[0] != tc.kind {
				t.Fatalf("the Remote got %d deliveries (%v)", len(remote.got), remote.kinds)
			}
			d := remote.got[0]
			if d.From != (Sender{ActorID: ping.ID(), Namespace: "ns", Name: "ping"}) || d.ID == "" || !traceparent.Valid(d.TraceParent) {
				t.Errorf("delivery %+v", d)
			}
			// ping handles an external request: its own requests continue
			// no one's path (the receiving engine adds ping itself).
			if len(d.Path) != 0 {
				t.Errorf("path %v", d.Path)
			}
		})
	}
	// Without a Remote, such a target is no such actor.
	e2, _ := newTestEngine(t)
	startMessenger(t, e2, "ping", ActorConfig{Dir: t.TempDir(), Namespace: "ns"})
	resp, err := e2.Request(ctx, Delivery{From: cli, Target: "ns/ping", Msg: ask("far", "e")})
	if err != nil || !strings.Contains(string(resp), "no such actor") {
		t.Fatalf("%q, %v", resp, err)
	}
}
