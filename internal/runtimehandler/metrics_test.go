package runtimehandler

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/troupe-dev/troupe/internal/chain"
)

func newMetricActor(t *testing.T, reg *MetricsRegistry, ns, name string) *Actor {
	t.Helper()
	a, err := NewActor(ActorOptions{ID: name + "-id", Name: name, Namespace: ns, Chain: chain.NewMemory(chain.Options{}), Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestMetricsRegistryExposition(t *testing.T) {
	reg := NewMetricsRegistry()
	a := newMetricActor(t, reg, "default", "hello")
	b := newMetricActor(t, reg, "prod", "hello")
	reg.observe(a, "request_duration_ms", 42.5)
	reg.observe(a, "request_duration_ms", 7.5)
	reg.observe(a, "requests_processed", 1)
	reg.observe(b, "request_duration_ms", -2)

	want := `
# HELP troupe_actor_metric Sum and count of the values an actor recorded with record-metric.
# TYPE troupe_actor_metric summary
troupe_actor_metric_sum{actor="hello",metric="request_duration_ms",namespace="default"} 50
troupe_actor_metric_count{actor="hello",metric="request_duration_ms",namespace="default"} 2
troupe_actor_metric_sum{actor="hello",metric="requests_processed",namespace="default"} 1
troupe_actor_metric_count{actor="hello",metric="requests_processed",namespace="default"} 1
troupe_actor_metric_sum{actor="hello",metric="request_duration_ms",namespace="prod"} -2
troupe_actor_metric_count{actor="hello",metric="request_duration_ms",namespace="prod"} 1
# HELP troupe_actor_metric_last Last value an actor recorded with record-metric.
# TYPE troupe_actor_metric_last gauge
troupe_actor_metric_last{actor="hello",metric="request_duration_ms",namespace="default"} 7.5
troupe_actor_metric_last{actor="hello",metric="requests_processed",namespace="default"} 1
troupe_actor_metric_last{actor="hello",metric="request_duration_ms",namespace="prod"} -2
`
	if err := testutil.CollectAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.CollectAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	// A pedantic registry checks the descriptors against what Collect sends.
	pedantic := prometheus.NewPedanticRegistry()
	pedantic.MustRegister(reg)
	if _, err := pedantic.Gather(); err != nil {
		t.Fatal(err)
	}
	// And it can sit beside the host's own metrics, whatever the actors name theirs.
	reg.observe(a, "go_goroutines", 3)
	host := prometheus.NewRegistry()
	host.MustRegister(collectors.NewGoCollector(), reg)
	if _, err := host.Gather(); err != nil {
		t.Fatalf("an actor metric named go_goroutines broke the host's registry: %v", err)
	}
}

func TestMetricsRegistryCloseDropsTheActorsSeries(t *testing.T) {
	reg := NewMetricsRegistry()
	a := newMetricActor(t, reg, "default", "a")
	b := newMetricActor(t, reg, "default", "b")
	reg.observe(a, "x", 1)
	reg.observe(b, "x", 1)
	a.Close()
	a.Close() // idempotent
	if n := testutil.CollectAndCount(reg, MetricLastName); n != 1 {
		t.Fatalf("%d series after closing a, want b's 1", n)
	}
}

func TestMetricsRegistryRestartContinuesSeries(t *testing.T) {
	reg := NewMetricsRegistry()
	old := newMetricActor(t, reg, "default", "a")
	reg.observe(old, "x", 2)
	// The restarted actor starts before the old one is closed.
	restarted := newMetricActor(t, reg, "default", "a")
	reg.observe(restarted, "x", 3)
	old.Close()
	want := `
# HELP troupe_actor_metric Sum and count of the values an actor recorded with record-metric.
# TYPE troupe_actor_metric summary
troupe_actor_metric_sum{actor="a",metric="x",namespace="default"} 5
troupe_actor_metric_count{actor="a",metric="x",namespace="default"} 2
`
	if err := testutil.CollectAndCompare(reg, strings.NewReader(want), MetricSummaryName); err != nil {
		t.Fatal(err)
	}
}

// record-metric from a guest reaches the registry; refused values don't.
func TestRecordMetricExported(t *testing.T) {
	h := newHarness(t, "guest.wasm")
	for _, v := range []float64{1, 2.5} {
		p, n := h.writeStr(argArea, "jobs_done")
		h.mustCall("call-record-metric", p, n, f64bits(v), retArea)
	}
	p, n := h.writeStr(argArea, "bad-name")
	h.mustCall("call-record-metric", p, n, f64bits(9), retArea)
	want := `
# HELP troupe_actor_metric_last Last value an actor recorded with record-metric.
# TYPE troupe_actor_metric_last gauge
troupe_actor_metric_last{actor="hello",metric="jobs_done",namespace="default"} 2.5
`
	if err := testutil.CollectAndCompare(h.metrics, strings.NewReader(want), MetricLastName); err != nil {
		t.Fatal(err)
	}
}

func TestRecordMetricWithoutRegistry(t *testing.T) {
	h := newHarness(t, "guest.wasm", func(o *ActorOptions) { o.Metrics = nil })
	p, n := h.writeStr(argArea, "jobs_done")
	h.mustCall("call-record-metric", p, n, f64bits(1), retArea)
	if msg, isErr := h.resultErr(); isErr {
		t.Fatal(msg)
	}
	if _, data := h.last(); data["name"] != "jobs_done" {
		t.Fatalf("not chained: %v", data)
	}
}
