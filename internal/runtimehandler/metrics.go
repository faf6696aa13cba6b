package runtimehandler

import (
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// How a name an actor records becomes Prometheus series. Each recorded name
// is its own family under MetricPrefix, labelled with the actor's namespace
// and name, so units and types survive into dashboards:
//
//   - a name ending in "_total" is a counter: the sum of the values
//     recorded (record-metric refuses a negative one), e.g.
//     requests_processed_total → troupe_actor_requests_processed_total;
//   - any other name is a gauge of the last value recorded, e.g.
//     memory_used_bytes → troupe_actor_memory_used_bytes, plus a summary
//     without quantiles, troupe_actor_<name>_recorded, whose _sum and
//     _count give rates and means of what was recorded
//     (rate(…_recorded_sum[5m]) / rate(…_recorded_count[5m])).
//
// The prefix keeps every actor family apart from the host's own (troupe_host_,
// go_, process_), whatever an actor names its metrics.
const (
	// MetricPrefix starts the family name of every metric actors record.
	MetricPrefix = "troupe_actor_"
	// RecordedSuffix ends the summary family of a gauge's recorded values.
	RecordedSuffix = "_recorded"
	// counterSuffix marks a recorded name as a counter.
	counterSuffix = "_total"

	// Series and drops of the registry itself, for the host's /metrics.
	seriesGaugeName    = "troupe_host_actor_metric_series"
	droppedCounterName = "troupe_host_actor_metric_series_dropped_total"
)

// reservedMetricSuffixes are the endings record-metric refuses: a name
// ending in one would collide with the summary family of another name.
var reservedMetricSuffixes = []string{RecordedSuffix, RecordedSuffix + "_sum", RecordedSuffix + "_count"}

// isCounterName reports whether a recorded name is exported as a counter.
func isCounterName(name string) bool { return strings.HasSuffix(name, counterSuffix) }

var (
	metricLabels = []string{"namespace", "actor"}
	seriesDesc   = prometheus.NewDesc(seriesGaugeName,
		"Series of actor metrics the host exports (each recorded name of each actor).", nil, nil)
	droppedDesc = prometheus.NewDesc(droppedCounterName,
		"Values recorded under a new actor metric series that the host did not export because it held its cap of series (--max-actor-metric-series); the chain still records them.", nil, nil)
)

// DefaultMaxMetricSeries is the host-wide cap on actor metric series when
// NewMetricsRegistry is given none: with the per-actor cap of 100 names it
// lets 100 actors use every name, and keeps one host's /metrics bounded
// however many actors it runs.
const DefaultMaxMetricSeries = 10000

// MetricsRegistry collects the metrics actors record, for the host's
// /metrics endpoint: register it with a prometheus.Registerer. It is safe
// for concurrent use.
type MetricsRegistry struct {
	mu        sync.Mutex
	series    map[seriesKey]*series
	families  map[string]*family // recorded name → its descriptors
	maxSeries int
	dropped   uint64
}

type seriesKey struct{ namespace, actor, metric string }

type series struct {
	last, sum float64
	count     uint64
	fam       *family
	owner     *Actor // the actor whose Close removes the series
}

// family holds the descriptors of one recorded name, shared by every actor
// that records it and built once (a Desc validates and hashes its name).
type family struct {
	value    *prometheus.Desc // the gauge, or the counter for a _total name
	recorded *prometheus.Desc // the gauge's summary; nil for a counter
	counter  bool
	refs     int // series using it
}

func newFamily(name string) *family {
	f := &family{counter: isCounterName(name)}
	if f.counter {
		f.value = prometheus.NewDesc(MetricPrefix+name,
			"Sum of the values actors recorded as "+name+" with record-metric (a counter: the name ends in _total).", metricLabels, nil)
		return f
	}
	f.value = prometheus.NewDesc(MetricPrefix+name,
		"Last value actors recorded as "+name+" with record-metric.", metricLabels, nil)
	f.recorded = prometheus.NewDesc(MetricPrefix+name+RecordedSuffix,
		"Sum and count of the values actors recorded as "+name+" with record-metric.", metricLabels, nil)
	return f
}

// NewMetricsRegistry returns an empty registry that exports at most
// maxSeries series of actor metrics (one per recorded name per actor);
// maxSeries <= 0 means DefaultMaxMetricSeries.
func NewMetricsRegistry(maxSeries int) *MetricsRegistry {
	if maxSeries <= 0 {
		maxSeries = DefaultMaxMetricSeries
	}
	return &MetricsRegistry{series: map[seriesKey]*series{}, families: map[string]*family{}, maxSeries: maxSeries}
}

// observe records one value. An actor restarted under the same name takes
// over its predecessor's series, so the sum and count continue. A value
// for a new series once the registry holds maxSeries is counted as dropped
// and not exported.
func (r *MetricsRegistry) observe(a *Actor, metric string, v float64) {
	k := seriesKey{a.namespace, a.name, metric}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.series[k]
	if s == nil {
		if len(r.series) >= r.maxSeries {
			r.dropped++
			return
		}
		f := r.families[metric]
		if f == nil {
			f = newFamily(metric)
			r.families[metric] = f
		}
		f.refs++
		s = &series{fam: f}
		r.series[k] = s
	}
	s.owner = a
	s.last = v
	s.sum += v
	s.count++
}

// drop removes the series a owns.
func (r *MetricsRegistry) drop(a *Actor) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, s := range r.series {
		if s.owner != a {
			continue
		}
		delete(r.series, k)
		if s.fam.refs--; s.fam.refs == 0 {
			delete(r.families, k.metric)
		}
	}
}

// Describe implements prometheus.Collector. It describes nothing, which
// makes the registry an unchecked collector: the actors' families come and
// go with what they record, and their prefix keeps them apart from every
// other family of the host.
func (r *MetricsRegistry) Describe(chan<- *prometheus.Desc) {}

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
	dropped := r.dropped
	r.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(seriesDesc, prometheus.GaugeValue, float64(len(rows)))
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(dropped))
	// A stable order makes /metrics diffable; the registry sorts too, but
	// only within a family.
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i].k, rows[j].k
		if a.metric != b.metric {
			return a.metric < b.metric
		}
		if a.namespace != b.namespace {
			return a.namespace < b.namespace
		}
		return a.actor < b.actor
	})
	for _, rw := range rows {
		f := rw.s.fam
		if f.counter {
			ch <- prometheus.MustNewConstMetric(f.value, prometheus.CounterValue, rw.s.sum, rw.k.namespace, rw.k.actor)
			continue
		}
		ch <- prometheus.MustNewConstMetric(f.value, prometheus.GaugeValue, rw.s.last, rw.k.namespace, rw.k.actor)
		ch <- prometheus.MustNewConstSummary(f.recorded, rw.s.count, rw.s.sum, nil, rw.k.namespace, rw.k.actor)
	}
}
