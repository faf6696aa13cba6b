package actorhost

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/diskbudget"
	"github.com/troupe-dev/troupe/internal/tracing"
	"github.com/troupe-dev/troupe/internal/tracing/otlp"
)

// newTracedEngine is an engine whose spans go to an in-memory exporter.
func newTracedEngine(t testing.TB) (*Engine, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := otlp.NewProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	e, err := NewEngine(context.Background(), EngineOptions{
		NoDiskCache: true, Logger: logr.Discard(), SystemInfo: fixedSystemInfo{}, Version: "test",
		Tracer: tp.Tracer(tracing.InstrumentationName),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e, exp
}

// TestSpansFollowTheTraceparent: an external request to ping, which asks
// pong, makes four spans of one trace, each the child of the one before:
// the external delivery (a child of the caller's traceparent), ping's
// handler, ping's request to pong (the span id both chains record) and
// pong's handler.
func TestSpansFollowTheTraceparent(t *testing.T) {
	e, exp := newTracedEngine(t)
	ctx := context.Background()
	pong := startMessenger(t, e, "pong", ActorConfig{})
	ping := startMessenger(t, e, "ping", ActorConfig{})
	const caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if _, err := e.Request(ctx, Delivery{From: cli, Target: "ping", Msg: ask("pong", "g"), TraceParent: caller}); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 4 {
		t.Fatalf("%d spans, want 4: %v", len(spans), spans)
	}
	byName := map[string][]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = append(byName[s.Name], s)
	}
	if len(byName[spanRequest]) != 2 || len(byName["handle-request"]) != 2 {
		t.Fatalf("spans %v", byName)
	}
	// Ended innermost first: pong's handler, ping's request, ping's
	// handler, the external request.
	pongH, pingReq, pingH, ext := spans[0], spans[1], spans[2], spans[3]
	callerSC, _ := tracing.Parse(caller)
	for i, link := range []struct {
		child  tracetest.SpanStub
		parent trace.SpanContext
	}{{ext, callerSC}, {pingH, ext.SpanContext}, {pingReq, pingH.SpanContext}, {pongH, pingReq.SpanContext}} {
		if link.child.SpanContext.TraceID() != callerSC.TraceID() {
			t.Errorf("link %d: span %s is in trace %s, want the caller's", i, link.child.Name, link.child.SpanContext.TraceID())
		}
		if link.child.Parent.SpanID() != link.parent.SpanID() {
			t.Errorf("link %d: %s's parent is %s, want %s", i, link.child.Name, link.child.Parent.SpanID(), link.parent.SpanID())
		}
	}
	if pingReq.SpanKind != trace.SpanKindProducer || pongH.SpanKind != trace.SpanKindConsumer {
		t.Errorf("kinds %v, %v", pingReq.SpanKind, pongH.SpanKind)
	}
	// Both chains name ping's request span.
	want := tracing.Format(pingReq.SpanContext)
	if got := chainTraceparent(t, ping, chain.KindRequestSent); got != want {
		t.Errorf("ping's chain records %s, the span is %s", got, want)
	}
	if got := chainTraceparent(t, pong, chain.KindRequestReceived); got != want {
		t.Errorf("pong's chain records %s, the span is %s", got, want)
	}
	if got := chainTraceparent(t, ping, chain.KindRequestReceived); got != tracing.Format(ext.SpanContext) {
		t.Errorf("ping received %s, the external delivery span is %s", got, tracing.Format(ext.SpanContext))
	}

	// An actor's message from another host (a sender this engine does
	// not run, outside a call): its host made the delivery span, so only
	// the handler's is made here, a child of the message's traceparent,
	// which pong records unchanged.
	exp.Reset()
	const remote = "00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01"
	if _, err := e.Request(ctx, Delivery{From: Sender{ActorID: "elsewhere", Name: "x"}, Target: "pong", Msg: []byte("g"), TraceParent: remote}); err != nil {
		t.Fatal(err)
	}
	if s := exp.GetSpans(); len(s) != 1 || s[0].Name != "handle-request" || tracing.Format(s[0].Parent) != remote {
		t.Errorf("a remote actor's delivery made %v", s)
	}

	// A refused delivery's span says why, without the message.
	exp.Reset()
	if _, err := e.Request(ctx, Delivery{From: cli, Target: "nobody", Msg: []byte("g")}); err == nil {
		t.Fatal("no error")
	}
	if s := exp.GetSpans(); len(s) != 1 || s[0].Status.Code != codes.Error || s[0].Status.Description != "refused" {
		t.Errorf("refused delivery's spans: %v", s)
	}
}

func chainTraceparent(t *testing.T, a *Actor, kind chain.Kind) string {
	t.Helper()
	for _, ev := range events(t, a) {
		if ev.Kind == kind {
			var d struct {
				TraceParent string `json:"traceparent"`
			}
			_ = json.Unmarshal(ev.Data, &d)
			return d.TraceParent
		}
	}
	t.Fatalf("%s has no %s event", a.cfg.Name, kind)
	return ""
}

// BenchmarkRequestTracing: an external request to an actor with tracing
// off (the engine as without OpenTelemetry: compare with
// BenchmarkRequest/external/minimal of the commit before) and on (every
// span sampled, exported to nothing).
func BenchmarkRequestTracing(b *testing.B) {
	run := func(b *testing.B, e *Engine) {
		cfg := ActorConfig{Name: "min-pong", Component: compile(b, e, "minimsg"), Dir: b.TempDir(), DiskBudget: &diskbudget.Limits{}}
		start(b, e, cfg)
		timedRequests(b, e, Delivery{From: cli, Target: "min-pong", Msg: []byte("e")}, func(r []byte) bool { return string(r) == "e" })
	}
	b.Run("off", func(b *testing.B) {
		e, _ := newTestEngine(b)
		run(b, e)
	})
	b.Run("on", func(b *testing.B) {
		tp := otlp.NewProvider() // sampled, no exporter: the spans' own cost
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		e, err := NewEngine(context.Background(), EngineOptions{NoDiskCache: true, Logger: logr.Discard(), SystemInfo: fixedSystemInfo{},
			Version: "test", MessageTimings: newHistogramTimings(), Tracer: tp.Tracer(tracing.InstrumentationName)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = e.Close(context.Background()) })
		run(b, e)
	})
}
