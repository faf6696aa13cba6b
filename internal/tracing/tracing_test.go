package tracing

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestParseFormat(t *testing.T) {
	tests := map[string]bool{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01": true,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00": true,
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01": false,
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01": false,
		"":        false,
		"garbage": false,
	}
	for tp, valid := range tests {
		sc, ok := Parse(tp)
		if ok != valid {
			t.Errorf("Parse(%q) ok %v", tp, ok)
			continue
		}
		if ok && (Format(sc) != tp || !sc.IsRemote()) {
			t.Errorf("Format(Parse(%q)) = %q, remote %v", tp, Format(sc), sc.IsRemote())
		}
	}
	if Format(trace.SpanContext{}) != "" {
		t.Error("an invalid span context formats")
	}
	id := trace.SpanID{1, 2, 3}
	if got, ok := SpanIDFrom(WithSpanID(context.Background(), id)); !ok || got != id {
		t.Errorf("SpanIDFrom: %v %v", got, ok)
	}
	if _, ok := SpanIDFrom(context.Background()); ok {
		t.Error("SpanIDFrom without one")
	}
}
