package runtimehandler

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric family names exported by MetricsRegistry. Actor metrics live under
// fixed families with the actor's metric name as a label, so a guest can
// never collide with (or shadow) a metric of the host itself, such as
// go_goroutines, and two actors using one name never clash.
const (
	// MetricLastName is a gauge: the last value an actor recorded.
	MetricLastName = "troupe_actor_metric_last"
	// MetricSummaryName is a summary without quantiles: its _sum and _count
	// series are the sum and number of recorded values, so a counter is
	// rate(troupe_actor_metric_sum[5m]) and a mean is sum/count.
	MetricSummaryName = "troupe_actor_metric"
)

var (
	metricLabels = []string{"namespace", "actor", "metric"}
	lastDesc     = prometheus.NewDesc(MetricLastName,
		"Last value an actor recorded with record-metric.", metricLabels, nil)
	summaryDesc = prometheus.NewDesc(MetricSummaryName,
		"Sum and count of the values an actor recorded with record-metric.", metricLabels, nil)
)

// MetricsRegistry collects the metrics actors record, for the host's
// /metrics endpoint: register it with a prometheus.Registerer. It is safe
// for concurrent use.
type MetricsRegistry struct {
	mu     sync.Mutex
	series map[seriesKey]*series
}

type seriesKey struct{ namespace, actor, metric string }

type series struct {
	last, sum float64
	count     uint64
	owner     *Actor // the actor whose Close removes the series
}

// NewMetricsRegistry returns an empty registry.
func NewMetricsRegistry() *MetricsRegistry {
	return &MetricsRegistry{series: map[seriesKey]*series{}}
}

// observe records one value. An actor restarted under the same name takes
// over its predecessor's series, so the sum and count continue.
func (r *MetricsRegistry) observe(a *Actor, metric string, v float64) {
	k := seriesKey{a.namespace, a.name, metric}
	r.mu.Lock()
	s := r.series[k]
	if s == nil {
		s = &series{}
		r.series[k] = s
	}
	s.owner = a
	s.last = v
	s.sum += v
	s.count++
	r.mu.Unlock()
}

// drop removes the series a owns.
func (r *MetricsRegistry) drop(a *Actor) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, s := range r.series {
		if s.owner == a {
			delete(r.series, k)
		}
	}
}

// Describe implements prometheus.Collector.
func (r *MetricsRegistry) Describe(ch chan<- *prometheus.Desc) {
	ch <- lastDesc
	ch <- summaryDesc
}

// Collect implements prometheus.Collector.
func (r *MetricsRegistry) Collect(ch chan<- prometheus.Metric) {
	type row struct {
		k seriesKey
		s series
	}
	r.mu.Lock()
	rows := make([]row, 0, len(r.series))
	for k, s := range r.series {
		rows = append(rows, row{k, *s})
	}
	r.mu.Unlock()
	// A stable order makes /metrics diffable; the registry sorts too, but
	// only within a family.
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i].k, rows[j].k
		if a.namespace != b.namespace {
			return a.namespace < b.namespace
		}
		if a.actor != b.actor {
			return a.actor < b.actor
		}
		return a.metric < b.metric
	})
	for _, rw := range rows {
		ch <- prometheus.MustNewConstMetric(lastDesc, prometheus.GaugeValue, rw.s.last,
			rw.k.namespace, rw.k.actor, rw.k.metric)
		ch <- prometheus.MustNewConstSummary(summaryDesc, rw.s.count, rw.s.sum, nil,
			rw.k.namespace, rw.k.actor, rw.k.metric)
	}
}
