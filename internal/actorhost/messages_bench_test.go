package actorhost

import (
	"context"
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/diskbudget"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
	"github.com/troupe-dev/troupe/internal/testutil"
)

// The message benchmarks run with the disk budget off (a zero
// diskbudget.Limits): the default chain budget (1,000 events/s) would
// rate-limit a benchmark within a second, and what is measured here is the
// engine. Chains are durable (group commit), as in a host.

// burst builds minimsg's "N" request: send msg to target n times in one
// call.
func burst(n uint32, target, msg string) []byte {
	b := binary.LittleEndian.AppendUint32([]byte{'N'}, n)
	b = append(b, byte(len(target)))
	return append(append(b, target...), msg...)
}

// askMinimal builds minimsg's "A" request: ask target with msg.
func askMinimal(target, msg string) []byte {
	return append(append([]byte{'A', byte(len(target))}, target...), msg...)
}

// latencies keeps the duration of each iteration, to report the median
// (the target is the median round trip, which ns/op, a mean, is
// not). Its array is allocated before the timer starts.
type latencies []time.Duration

func newLatencies() latencies { return make(latencies, 0, 1<<20) }

func (l *latencies) add(d time.Duration) {
	if len(*l) < cap(*l) {
		*l = append(*l, d)
	}
}

// report adds the median and the 99th percentile as metrics.
func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	b.ReportMetric(float64(l[len(l)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(l[len(l)*99/100].Nanoseconds()), "p99-ns")
}

// timedRequests runs d as a request per iteration, reporting the median.
func timedRequests(b *testing.B, e *Engine, d Delivery, check func([]byte) bool) {
	ctx := context.Background()
	lat := newLatencies()
	b.ReportAllocs()
	cpu := processCPU(b)
	for b.Loop() {
		begin := time.Now()
		resp, err := e.Request(ctx, d)
		lat.add(time.Since(begin))
		if err != nil {
			b.Fatal(err)
		}
		if check != nil && !check(resp) {
			b.Fatalf("response %q", resp)
		}
	}
	reportCPU(b, processCPU(b)-cpu, b.N, "cpu-ns/op")
	lat.report(b)
}

// reportCPU reports the process's CPU time per item (all goroutines: the
// caller's, the actors' drains, the chains' group commit), unless the
// platform does not measure it.
func reportCPU(b *testing.B, used time.Duration, n int, unit string) {
	if used > 0 && n > 0 {
		b.ReportMetric(float64(used.Nanoseconds())/float64(n), unit)
	}
}

// BenchmarkRequest times a request's round trip through the mailboxes,
// against a plain call into an actor in the same run (a tick, the
// baseline), with three guests: minimal (minimsg.wat: a handler of a few
// instructions, so the time is the engine's), messenger (messenger.wat,
// the tests' actor: a bump allocator with cabi_post) and go-sdk (the Go
// SDK's abiactor: what a Go actor adds). external is one hop (caller →
// actor → caller); actor-to-actor is an external request to ping that
// asks pong, so it minus external is one actor-to-actor round trip.
func BenchmarkRequest(b *testing.B) {
	e, _ := newTestEngine(b)
	ctx := context.Background()
	unbudgeted := func() ActorConfig { return ActorConfig{Dir: b.TempDir(), DiskBudget: &diskbudget.Limits{}} }
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
	minimal := compile(b, e, "minimsg")
	for _, name := range []string{"min-ping", "min-pong"} {
		cfg := unbudgeted()
		cfg.Name, cfg.Component = name, minimal
		start(b, e, cfg)
	}
	pong := startMessenger(b, e, "pong", unbudgeted())
	startMessenger(b, e, "ping", unbudgeted())
	echo := func(want string) func([]byte) bool { return func(r []byte) bool { return string(r) == want } }
	b.Run("external/minimal", func(b *testing.B) {
		timedRequests(b, e, Delivery{From: cli, Target: "min-pong", Msg: []byte("e")}, echo("e"))
	})
	b.Run("external/messenger", func(b *testing.B) {
		timedRequests(b, e, Delivery{From: cli, Target: pong.ID(), Msg: []byte("e")}, echo("e"))
	})
	b.Run("external/go-sdk", func(b *testing.B) {
		c, err := e.Compile(ctx, testutil.BuildActor(b, "sdk/theater/testdata/abiactor"))
		if err != nil {
			b.Fatal(err)
		}
		cfg := unbudgeted()
		cfg.Name, cfg.Component, cfg.TickInterval, cfg.InitialState = "sdk", c, -1, []byte("s:")
		cfg.Env = runtimehandler.MapEnv{"MODE": {Value: "echo"}}
		start(b, e, cfg)
		timedRequests(b, e, Delivery{From: cli, Target: "sdk", Msg: []byte("e"), ID: "r"}, echo("r:e"))
	})
	b.Run("actor-to-actor/minimal", func(b *testing.B) {
		timedRequests(b, e, Delivery{From: cli, Target: "min-ping", Msg: askMinimal("min-pong", "e")}, echo("e"))
	})
	b.Run("actor-to-actor/messenger", func(b *testing.B) {
		timedRequests(b, e, Delivery{From: cli, Target: "ping", Msg: ask("pong", "e")}, echo("e"))
	})
}

// BenchmarkSend times messages into one actor, both chains durable:
// external queues b.N messages from outside, then waits for the receiver
// to have handled them all (a request, FIFO behind them), so the time
// covers every handler call; actor-to-actor has one minimal actor send them
// to another, burstSize per call into the sender (the issue's "messages per
// second from one actor to another"), and waits likewise. keep-state leaves
// the state as it was; count-state changes it with every message, and the
// newest state is saved (and fsynced) once per group commit, when the chain
// writes the messages' events (statefile.go).
func BenchmarkSend(b *testing.B) {
	const burstSize = 1000
	cfg := func(b *testing.B, name string, c *Component) ActorConfig {
		return ActorConfig{Name: name, Component: c, Dir: b.TempDir(), MailboxMessages: 1 << 20, RequestTimeout: 10 * time.Minute,
			CallTimeout: time.Minute, DiskBudget: &diskbudget.Limits{}}
	}
	run := func(b *testing.B, e *Engine, target string, queue func(n int)) {
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		begin, cpu := time.Now(), processCPU(b)
		for sent := 0; sent < b.N; {
			n := min(burstSize, b.N-sent)
			queue(n)
			sent += n
		}
		// Timed too: the queue is drained only once this returns.
		if _, err := e.Request(ctx, Delivery{From: cli, Target: target, Msg: []byte("e")}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/time.Since(begin).Seconds(), "msgs/s")
		// What one core could carry: messages per second of CPU time.
		if used := processCPU(b) - cpu; used > 0 {
			reportCPU(b, used, b.N, "cpu-ns/msg")
			b.ReportMetric(float64(b.N)/used.Seconds(), "msgs/cpu-s")
		}
	}
	external := func(b *testing.B, guest, msg string) {
		e, _ := newTestEngine(b)
		ctx := context.Background()
		a := start(b, e, cfg(b, "sink", compile(b, e, guest)))
		d := Delivery{From: cli, Target: a.ID(), Msg: []byte(msg)}
		run(b, e, "sink", func(n int) {
			for range n {
				if err := e.Send(ctx, d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("external/minimal", func(b *testing.B) { external(b, "minimsg", "x") })
	b.Run("external/messenger/keep-state", func(b *testing.B) { external(b, "messenger", "x") })
	b.Run("external/messenger/count-state", func(b *testing.B) { external(b, "messenger", "i") })
	b.Run("actor-to-actor/minimal", func(b *testing.B) {
		e, _ := newTestEngine(b)
		ctx := context.Background()
		c := compile(b, e, "minimsg")
		start(b, e, cfg(b, "sender", c))
		start(b, e, cfg(b, "receiver", c))
		run(b, e, "receiver", func(n int) {
			resp, err := e.Request(ctx, Delivery{From: cli, Target: "sender", Msg: burst(uint32(n), "receiver", "x")})
			if err != nil {
				b.Fatal(err)
			}
			if len(resp) != 4 || binary.LittleEndian.Uint32(resp) != uint32(n) {
				b.Fatalf("%d sends: %q came back", n, resp)
			}
		})
	})
}
