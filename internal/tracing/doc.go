// Package tracing makes the OpenTelemetry spans of message deliveries and
// handler calls, joined by the messages' W3C traceparent, which the chains
// record: a sender's chain and its receiver's name the same delivery span.
// It needs the OpenTelemetry API only; package otlp installs the SDK and
// the OTLP/HTTP exporter, and only when an endpoint is configured: without
// a tracer the engine makes no call into OpenTelemetry at all.
package tracing
