// Package traceparent makes and checks W3C trace context headers
// (https://www.w3.org/TR/trace-context/): every message between actors
// carries one, recorded on both sides, so that a trace can be joined later
// without changing the chain format again.
package traceparent
