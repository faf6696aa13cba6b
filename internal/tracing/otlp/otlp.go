package otlp

import (
	"context"
	"crypto/rand"
	"fmt"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/troupe-dev/troupe/internal/tracing"
)

// Options configure Setup.
type Options struct {
	// Endpoint is the OTLP/HTTP collector's URL, e.g.
	// http://otel-collector.observability:4318 (the path /v1/traces is
	// added when it has none).
	Endpoint string
	// ServiceName is the resource's service.name, e.g. "troupe-host".
	ServiceName string
	// Version is the resource's service.version.
	Version string
}

// Setup builds a tracer provider that batches spans to o.Endpoint, and
// returns its tracer and the provider's shutdown, which flushes what is
// left (call it with a deadline when the process ends).
func Setup(ctx context.Context, o Options) (trace.Tracer, func(context.Context) error, error) {
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(o.Endpoint))
	if err != nil {
		return nil, nil, fmt.Errorf("the OTLP exporter for %s: %w", o.Endpoint, err)
	}
	res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(o.ServiceName), semconv.ServiceVersion(o.Version))
	tp := NewProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp.Tracer(tracing.InstrumentationName), tp.Shutdown, nil
}

// NewProvider is an SDK tracer provider with the span ids
// tracing.WithSpanID asks for (tests add their own exporter).
func NewProvider(opts ...sdktrace.TracerProviderOption) *sdktrace.TracerProvider {
	return sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{sdktrace.WithIDGenerator(&idGenerator{})}, opts...)...)
}

// idGenerator is the SDK's random ids, but for a span id WithSpanID gave.
type idGenerator struct{}

func (g *idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	var tid trace.TraceID
	for !tid.IsValid() {
		_, _ = rand.Read(tid[:])
	}
	return tid, g.NewSpanID(ctx, tid)
}

func (g *idGenerator) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	if id, ok := tracing.SpanIDFrom(ctx); ok {
		return id
	}
	var sid trace.SpanID
	for !sid.IsValid() {
		_, _ = rand.Read(sid[:])
	}
	return sid
}
