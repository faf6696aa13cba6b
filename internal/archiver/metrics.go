package archiver

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Values of troupe_host_archive_uploads_total's result label.
const (
	resultOK     = "ok"
	resultError  = "error"
	resultFenced = "fenced"
)

type metrics struct {
	uploads *prometheus.CounterVec
	bytes   prometheus.Counter
	pruned  prometheus.Counter
	seconds prometheus.Histogram
	actors  prometheus.Gauge
	oldest  prometheus.GaugeFunc
}

func newMetrics(ar *Archiver) *metrics {
	m := &metrics{
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "troupe_host_archive_uploads_total",
			Help: "Segment uploads to the archive by result: ok, error (retried with backoff), fenced (a later epoch claimed the actor).",
		}, []string{"result"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "troupe_host_archive_uploaded_bytes_total",
			Help: "Chain bytes uploaded to the archive (segments; states and manifests not counted).",
		}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "troupe_host_archive_pruned_bytes_total",
			Help: "Bytes of rotated chain files the host removed from its node once the archive held them (the local tail).",
		}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "troupe_host_archive_upload_seconds",
			Help:    "Time one segment upload took (segment, state and manifest), whatever its result.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		actors: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "troupe_host_archive_actors",
			Help: "Actors whose chains the host archives now.",
		}),
	}
	m.oldest = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "troupe_host_archive_oldest_unarchived_event_age_seconds",
		Help: "How long ago the oldest event of the host's actors that the archive does not hold yet was appended (0: none waits); above the recovery point, the archive is behind.",
	}, func() float64 { return ar.oldest().Seconds() })
	for _, r := range []string{resultOK, resultError, resultFenced} {
		m.uploads.WithLabelValues(r)
	}
	return m
}

func (m *metrics) register(r prometheus.Registerer) error {
	var errs []error
	for _, c := range []prometheus.Collector{m.uploads, m.bytes, m.pruned, m.seconds, m.actors, m.oldest} {
		errs = append(errs, r.Register(c))
	}
	return errors.Join(errs...)
}
