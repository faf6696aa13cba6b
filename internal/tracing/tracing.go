package tracing

import (
	"context"
	"encoding/hex"

	"go.opentelemetry.io/otel/trace"

	"github.com/troupe-dev/troupe/internal/traceparent"
)

// InstrumentationName names the tracer of the engine's spans.
const InstrumentationName = "github.com/troupe-dev/troupe/internal/actorhost"

type spanIDKey struct{}

// WithSpanID asks the tracer provider's id generator (package otlp's) to
// give the next span started with ctx the id id: a delivery span takes the
// span id its message's traceparent already carries (the runtime handler
// minted it, and the sender's chain recorded it), so chains and spans
// agree.
func WithSpanID(ctx context.Context, id trace.SpanID) context.Context {
	return context.WithValue(ctx, spanIDKey{}, id)
}

// SpanIDFrom is the span id WithSpanID asked for, if any.
func SpanIDFrom(ctx context.Context) (trace.SpanID, bool) {
	id, ok := ctx.Value(spanIDKey{}).(trace.SpanID)
	return id, ok && id.IsValid()
}

// Parse reads a W3C traceparent into a remote span context; ok is false
// for an invalid one.
func Parse(tp string) (sc trace.SpanContext, ok bool) {
	if !traceparent.Valid(tp) {
		return trace.SpanContext{}, false
	}
	var cfg trace.SpanContextConfig
	_, _ = hex.Decode(cfg.TraceID[:], []byte(tp[3:35]))
	_, _ = hex.Decode(cfg.SpanID[:], []byte(tp[36:52]))
	var flags [1]byte
	_, _ = hex.Decode(flags[:], []byte(tp[53:55]))
	cfg.TraceFlags, cfg.Remote = trace.TraceFlags(flags[0]), true
	return trace.NewSpanContext(cfg), true
}

// Format is sc as a W3C traceparent ("" for an invalid one).
func Format(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	b := make([]byte, 0, traceparent.Len)
	b = append(b, "00-"...)
	b = hex.AppendEncode(b, tid[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, sid[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, []byte{byte(sc.TraceFlags())})
	return string(b)
}

// StartDelivery starts the span of one delivery, on the sender's side.
// parent is the traceparent of the handler call that sends (""
// for an external caller); tp is the message's. For an actor's message,
// whose tp the runtime handler made a child of parent, the span takes tp's
// span id, so tp names it unchanged; an external caller's tp becomes the
// span's parent, and the returned traceparent (the span's) is what the
// receiver gets.
func StartDelivery(ctx context.Context, t trace.Tracer, name string, parent, tp string, opts ...trace.SpanStartOption) (trace.Span, string) {
	opts = append(opts, trace.WithSpanKind(trace.SpanKindProducer))
	if psc, ok := Parse(parent); ok {
		ctx = trace.ContextWithRemoteSpanContext(ctx, psc)
		if sc, ok := Parse(tp); ok && sc.TraceID() == psc.TraceID() {
			_, span := t.Start(WithSpanID(ctx, sc.SpanID()), name, opts...)
			return span, tp
		}
	} else if sc, ok := Parse(tp); ok {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	_, span := t.Start(ctx, name, opts...)
	if out := Format(span.SpanContext()); out != "" {
		return span, out
	}
	return span, tp
}

// StartHandler starts the span of a handler's call, a child of its
// message's traceparent tp, and returns the traceparent of the span: what
// the handler's own messages continue.
func StartHandler(ctx context.Context, t trace.Tracer, name, tp string, opts ...trace.SpanStartOption) (trace.Span, string) {
	if sc, ok := Parse(tp); ok {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	opts = append(opts, trace.WithSpanKind(trace.SpanKindConsumer))
	_, span := t.Start(ctx, name, opts...)
	if out := Format(span.SpanContext()); out != "" {
		return span, out
	}
	return span, tp
}
