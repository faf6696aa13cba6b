package actorhost

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-logr/logr"
)

// TestCrossNamespacePolicy: an actor accepts messages from its own
// namespace always, from another only when its AcceptPolicy names or
// selects it, and from external callers always; a refused sender's err
// result says why, on both the send and the request path.
func TestCrossNamespacePolicy(t *testing.T) {
	nsLabels := map[string]map[string]string{
		"labeled": {"troupe.dev/messages": "ok"},
		"other":   {"troupe.dev/messages": "no"},
	}
	e, err := NewEngine(context.Background(), EngineOptions{
		NoDiskCache: true, Logger: logr.Discard(), SystemInfo: fixedSystemInfo{}, Version: "test",
		NamespaceLabels: func(ns string) (map[string]string, bool) { l, ok := nsLabels[ns]; return l, ok },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	ctx := context.Background()
	comp := compile(t, e, "messenger")
	run := func(ns, name string, p *AcceptPolicy) *Actor {
		return start(t, e, ActorConfig{Name: name, Namespace: ns, Component: comp, AcceptFrom: p, Stats: &MessageStats{}})
	}
	selectOK := func(l map[string]string) bool { return l["troupe.dev/messages"] == "ok" }
	targets := map[string]*Actor{
		"closed":   run("t", "closed", nil),
		"listed":   run("t", "listed", &AcceptPolicy{Namespaces: []string{"a", "listed-ns"}}),
		"selected": run("t", "selected", &AcceptPolicy{MatchLabels: selectOK}),
	}
	senders := map[string]*Actor{}
	for _, ns := range []string{"t", "a", "listed-ns", "labeled", "other", "unknown"} {
		senders[ns] = run(ns, "sender", nil)
	}

	tests := []struct {
		from, to string
		allowed  bool
	}{
		{"t", "closed", true}, // same namespace: always
		{"a", "closed", false},
		{"labeled", "closed", false},
		{"listed-ns", "listed", true},
		{"a", "listed", true},
		{"labeled", "listed", false},
		{"labeled", "selected", true},
		{"other", "selected", false},   // labels that don't match
		{"unknown", "selected", false}, // no labels known
		{"a", "selected", false},
		{"t", "selected", true},
	}
	for _, tc := range tests {
		for _, op := range []string{"request", "send"} {
			t.Run(tc.from+"->"+tc.to+"/"+op, func(t *testing.T) {
				tgt := targets[tc.to]
				before := tgt.cfg.Stats.Received(kindOf(op), ResultRefused)
				// Directly, as a host-to-host delivery arrives...
				d := Delivery{From: Sender{ActorID: senders[tc.from].ID(), Namespace: tc.from, Name: "sender"}, Target: "t/" + tc.to, Msg: []byte("g")}
				if op == "send" {
					d.Msg = []byte("i")
					err = e.Send(ctx, d)
				} else {
					_, err = e.Request(ctx, d)
				}
				if got := !errors.Is(err, ErrNamespaceNotAllowed); got != tc.allowed {
					t.Fatalf("allowed %v, want %v (err %v)", got, tc.allowed, err)
				}
				if !tc.allowed {
					if !strings.Contains(err.Error(), `does not accept messages from namespace "`+tc.from+`"`) {
						t.Errorf("the error does not say why: %v", err)
					}
					if n := tgt.cfg.Stats.Received(kindOf(op), ResultRefused); n != before+1 {
						t.Errorf("refused count %d, want %d", n, before+1)
					}
				} else if err != nil {
					t.Fatalf("allowed but failed: %v", err)
				}
				// ...and from the sender actor itself: its err result
				// carries the refusal.
				msg := ask("t/"+tc.to, "g")
				if op == "send" {
					msg = tell("t/"+tc.to, "i")
				}
				resp, err := e.Request(ctx, Delivery{From: cli, Target: senders[tc.from].ID(), Msg: msg})
				if err != nil {
					t.Fatal(err)
				}
				refused := strings.Contains(string(resp), "namespace not allowed")
				if refused == tc.allowed {
					t.Fatalf("the sender's result %q, want allowed %v", resp, tc.allowed)
				}
			})
		}
	}

	// External callers are not subject to the policy.
	if _, err := e.Request(ctx, Delivery{From: Sender{External: "user:alice"}, Target: "t/closed", Msg: []byte("g")}); err != nil {
		t.Fatalf("external request: %v", err)
	}
	if err := e.Send(ctx, Delivery{From: Sender{External: "user:alice", Namespace: "a"}, Target: "t/closed", Msg: []byte("i")}); err != nil {
		t.Fatalf("external send: %v", err)
	}
	if ResultOf(&deliveryError{kind: ErrNamespaceNotAllowed}) != ResultRefused {
		t.Error("NamespaceNotAllowed is not counted as refused")
	}
}

// TestCrossNamespacePolicyWithoutLabels: an engine with no namespace
// labels (`troupe run`) matches no selector, even an empty one, and still
// accepts listed namespaces.
func TestCrossNamespacePolicyWithoutLabels(t *testing.T) {
	e, _ := newTestEngine(t)
	comp := compile(t, e, "messenger")
	start(t, e, ActorConfig{Name: "x", Namespace: "t", Component: comp,
		AcceptFrom: &AcceptPolicy{Namespaces: []string{"a"}, MatchLabels: func(map[string]string) bool { return true }}})
	for ns, allowed := range map[string]bool{"a": true, "b": false, "": false, "t": true} {
		_, err := e.Request(context.Background(), Delivery{From: Sender{ActorID: "s", Namespace: ns}, Target: "t/x", Msg: []byte("g")})
		if got := !errors.Is(err, ErrNamespaceNotAllowed); got != allowed {
			t.Errorf("from %q: allowed %v, want %v (%v)", ns, got, allowed, err)
		}
	}
}

func kindOf(op string) MessageKind {
	if op == "send" {
		return KindSend
	}
	return KindRequest
}
