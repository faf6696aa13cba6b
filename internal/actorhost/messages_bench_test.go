package actorhost

import (
	"context"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/diskbudget"
)

// BenchmarkRequest times a request's round trip through the mailboxes,
// against a plain call into an actor in the same run (a tick, the
// baseline): external is one hop (caller → actor → caller);
// actor-to-actor is an external request to ping that asks pong, so it
// minus external is one actor-to-actor round trip. Chains are durable
// (group commit), as in a host.
func BenchmarkRequest(b *testing.B) {
	e, _ := newTestEngine(b)
	ctx := context.Background()
	b.Run("plain-call", func(b *testing.B) {
		a := start(b, e, ActorConfig{Name: "baseline", Component: compile(b, e, "tick"), InitialState: tickState('i'),
			TickInterval: time.Hour, Dir: b.TempDir(), DiskBudget: &diskbudget.Limits{}})
		done := a.Done()
		b.ReportAllocs()
		for b.Loop() {
			if more, err := a.tick(ctx, done); !more || err != nil {
				b.Fatalf("tick: %v, %v", more, err)
			}
		}
	})
	// The default chain budget (1,000 events/s) would rate-limit a
	// benchmark within a second: measured here is the engine, unbudgeted.
	pong := startMessenger(b, e, "pong", ActorConfig{Dir: b.TempDir(), DiskBudget: &diskbudget.Limits{}})
	startMessenger(b, e, "ping", ActorConfig{Dir: b.TempDir(), DiskBudget: &diskbudget.Limits{}})
	b.Run("external", func(b *testing.B) {
		d := Delivery{From: cli, Target: pong.ID(), Msg: []byte("e")}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.Request(ctx, d); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("actor-to-actor", func(b *testing.B) {
		d := Delivery{From: cli, Target: "ping", Msg: ask("pong", "e")}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.Request(ctx, d); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSend times queuing a message and its handling, both chains
// durable: messages per second into one actor (the last Request waits for
// the queue to drain, so the time covers every handler call). keep-state
// leaves the state as it was; count-state changes it with every message,
// and the newest state is saved (and fsynced) once per group commit, when
// the chain writes the messages' events (statefile.go).
func BenchmarkSend(b *testing.B) {
	for name, msg := range map[string]string{"keep-state": "x", "count-state": "i"} {
		b.Run(name, func(b *testing.B) {
			e, _ := newTestEngine(b)
			ctx := context.Background()
			a := startMessenger(b, e, "sink", ActorConfig{Dir: b.TempDir(), MailboxMessages: 1 << 20, RequestTimeout: 10 * time.Minute,
				DiskBudget: &diskbudget.Limits{}})
			d := Delivery{From: cli, Target: a.ID(), Msg: []byte(msg)}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := e.Send(ctx, d); err != nil {
					b.Fatal(err)
				}
			}
			// Timed too: the queue is drained only once this returns.
			if _, err := e.Request(ctx, Delivery{From: cli, Target: a.ID(), Msg: []byte("g")}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
		})
	}
}
