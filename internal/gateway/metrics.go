package gateway

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the gateway's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
}

// NewMetrics registers the gateway's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "troupe_gateway_requests_total",
			Help: "Messages the gateway received, by operation (request, send; log for a log stream) and result (OK, Accepted, or the error's reason).",
		}, []string{"op", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "troupe_gateway_request_duration_seconds",
			Help:    "Time from a message's arrival at the gateway to its answer (for a log stream: to its first byte), by operation.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"op"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "troupe_gateway_auth_failures_total",
			Help: "Requests refused as unauthenticated (401), by reason (NoClientCert, UntrustedClientCert, NameNotAllowed, NoUser, NotConfigured).",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.requests, m.duration, m.authFailures)
	return m
}

func (m *Metrics) request(op, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(op, result).Inc()
	m.duration.WithLabelValues(op).Observe(d.Seconds())
}

func (m *Metrics) authFailure(reason string) {
	if m == nil {
		return
	}
	m.authFailures.WithLabelValues(reason).Inc()
}
