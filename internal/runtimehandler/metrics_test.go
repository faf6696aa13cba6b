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
	reg := NewMetricsRegistry(0)
	a := newMetricActor(t, reg, "default", "hello")
	b := newMetricActor(t, reg, "prod", "hello")
	reg.observe(a, "request_duration_seconds", 0.0425)
	reg.observe(a, "request_duration_seconds", 0.0075)
	reg.observe(a, "requests_processed_total", 1)
	reg.observe(a, "requests_processed_total", 2)
	reg.observe(b, "request_duration_seconds", 0.5)

	want := `
# HELP troupe_actor_request_duration_seconds Last value actors recorded as request_duration_seconds with record-metric.
# TYPE troupe_actor_request_duration_seconds gauge
troupe_actor_request_duration_seconds{actor="hello",namespace="default"} 0.0075
troupe_actor_request_duration_seconds{actor="hello",namespace="prod"} 0.5
# HELP troupe_actor_request_duration_seconds_recorded Sum and count of the values actors recorded as request_duration_seconds with record-metric.
# TYPE troupe_actor_request_duration_seconds_recorded summary
troupe_actor_request_duration_seconds_recorded_sum{actor="hello",namespace="default"} 0.05
troupe_actor_request_duration_seconds_recorded_count{actor="hello",namespace="default"} 2
troupe_actor_request_duration_seconds_recorded_sum{actor="hello",namespace="prod"} 0.5
troupe_actor_request_duration_seconds_recorded_count{actor="hello",namespace="prod"} 1
# HELP troupe_actor_requests_processed_total Sum of the values actors recorded as requests_processed_total with record-metric (a counter: the name ends in _total).
# TYPE troupe_actor_requests_processed_total counter
troupe_actor_requests_processed_total{actor="hello",namespace="default"} 3
# HELP troupe_host_actor_metric_series Series of actor metrics the host exports (each recorded name of each actor).
# TYPE troupe_host_actor_metric_series gauge
troupe_host_actor_metric_series 3
# HELP troupe_host_actor_metric_series_dropped_total Values recorded under a new actor metric series that the host did not export because it held its cap of series (--max-actor-metric-series); the chain still records them.
# TYPE troupe_host_actor_metric_series_dropped_total counter
troupe_host_actor_metric_series_dropped_total 0
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
	// A pedantic registry checks what Collect sends.
	pedantic := prometheus.NewPedanticRegistry()
	pedantic.MustRegister(reg)
	if _, err := pedantic.Gather(); err != nil {
		t.Fatal(err)
	}
	// And it can sit beside the host's own metrics, whatever the actors name theirs.
	reg.observe(a, "go_goroutines", 3)
	reg.observe(a, "host_actors_running", 3)
	host := prometheus.NewRegistry()
	host.MustRegister(collectors.NewGoCollector(), reg)
	if _, err := host.Gather(); err != nil {
		t.Fatalf("an actor metric named go_goroutines broke the host's registry: %v", err)
	}
}

// What record-metric accepts can't make the exposition inconsistent: any
// two accepted names, recorded by any actors, gather without error.
func TestMetricsRegistryAcceptedNamesNeverCollide(t *testing.T) {
	names := []string{"x", "x_total", "x_sum", "x_count", "x_bucket", "x_created", "x_recorded_total",
		"x_total_total", "_x", "x_", "sum", "total", "recorded"}
	for _, n := range names {
		if msg := metricNameError([]byte(n)); msg != "" {
			t.Fatalf("%q refused: %s", n, msg)
		}
	}
	reg := NewMetricsRegistry(0)
	a := newMetricActor(t, reg, "default", "a")
	b := newMetricActor(t, reg, "other", "a")
	for _, n := range names {
		reg.observe(a, n, 1)
		reg.observe(b, n, 2)
	}
	pedantic := prometheus.NewPedanticRegistry()
	pedantic.MustRegister(reg)
	if _, err := pedantic.Gather(); err != nil {
		t.Fatal(err)
	}
}

func TestMetricsRegistrySeriesCap(t *testing.T) {
	reg := NewMetricsRegistry(3)
	a := newMetricActor(t, reg, "default", "a")
	b := newMetricActor(t, reg, "default", "b")
	reg.observe(a, "x", 1)
	reg.observe(a, "y", 1)
	reg.observe(b, "x", 1)
	reg.observe(b, "y", 1) // a fourth series: dropped
	reg.observe(b, "y", 2) // and again
	reg.observe(b, "x", 5) // an existing series still moves
	want := `
# HELP troupe_actor_x Last value actors recorded as x with record-metric.
# TYPE troupe_actor_x gauge
troupe_actor_x{actor="a",namespace="default"} 1
troupe_actor_x{actor="b",namespace="default"} 5
# HELP troupe_actor_y Last value actors recorded as y with record-metric.
# TYPE troupe_actor_y gauge
troupe_actor_y{actor="a",namespace="default"} 1
# HELP troupe_host_actor_metric_series Series of actor metrics the host exports (each recorded name of each actor).
# TYPE troupe_host_actor_metric_series gauge
troupe_host_actor_metric_series 3
# HELP troupe_host_actor_metric_series_dropped_total Values recorded under a new actor metric series that the host did not export because it held its cap of series (--max-actor-metric-series); the chain still records them.
# TYPE troupe_host_actor_metric_series_dropped_total counter
troupe_host_actor_metric_series_dropped_total 2
`
	if err := testutil.CollectAndCompare(reg, strings.NewReader(want), "troupe_actor_x", "troupe_actor_y",
		"troupe_host_actor_metric_series", "troupe_host_actor_metric_series_dropped_total"); err != nil {
		t.Fatal(err)
	}
	// Closing a frees its series for b.
	a.Close()
	reg.observe(b, "y", 7)
	if n := testutil.CollectAndCount(reg, "troupe_actor_y"); n != 1 {
		t.Fatalf("%d troupe_actor_y series after a closed, want b's 1", n)
	}
	if len(reg.families) != 2 {
		t.Fatalf("%d families cached, want 2", len(reg.families))
	}
}

func TestMetricsRegistryCloseDropsTheActorsSeries(t *testing.T) {
	reg := NewMetricsRegistry(0)
	a := newMetricActor(t, reg, "default", "a")
	b := newMetricActor(t, reg, "default", "b")
	reg.observe(a, "x", 1)
	reg.observe(a, "only_a", 1)
	reg.observe(b, "x", 1)
	a.Close()
	a.Close() // idempotent
	if n := testutil.CollectAndCount(reg, "troupe_actor_x"); n != 1 {
		t.Fatalf("%d series after closing a, want b's 1", n)
	}
	if _, ok := reg.families["only_a"]; ok {
		t.Fatal("the descriptors of a name nobody records any more are kept")
	}
}

func TestMetricsRegistryRestartContinuesSeries(t *testing.T) {
	reg := NewMetricsRegistry(0)
	old := newMetricActor(t, reg, "default", "a")
	reg.observe(old, "x", 2)
	// The restarted actor starts before the old one is closed.
	restarted := newMetricActor(t, reg, "default", "a")
	reg.observe(restarted, "x", 3)
	old.Close()
	want := `
# HELP troupe_actor_x_recorded Sum and count of the values actors recorded as x with record-metric.
# TYPE troupe_actor_x_recorded summary
troupe_actor_x_recorded_sum{actor="a",namespace="default"} 5
troupe_actor_x_recorded_count{actor="a",namespace="default"} 2
`
	if err := testutil.CollectAndCompare(reg, strings.NewReader(want), "troupe_actor_x_recorded"); err != nil {
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
	for _, bad := range []string{"bad-name", "jobs:done", "jobs_recorded"} {
		p, n := h.writeStr(argArea, bad)
		h.mustCall("call-record-metric", p, n, f64bits(9), retArea)
	}
	p, n := h.writeStr(argArea, "jobs_total")
	h.mustCall("call-record-metric", p, n, f64bits(-1), retArea)
	want := `
# HELP troupe_actor_jobs_done Last value actors recorded as jobs_done with record-metric.
# TYPE troupe_actor_jobs_done gauge
troupe_actor_jobs_done{actor="hello",namespace="default"} 2.5
`
	if err := testutil.CollectAndCompare(h.metrics, strings.NewReader(want), "troupe_actor_jobs_done", "troupe_actor_jobs_total"); err != nil {
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
