// Package otlp installs the OpenTelemetry SDK for the engine's spans
// (package tracing): a tracer provider that batches them to an OTLP/HTTP
// collector. Only a process with an endpoint configured builds one.
package otlp
