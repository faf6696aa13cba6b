package host

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/troupe-dev/troupe/internal/kubeenv"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
)

// hostMetrics are the host's own metrics, on a registry of the host's (not
// the process-global one: tests run several hosts in one process); /metrics
// merges it with controller-runtime's registry, which has the Go and
// process collectors.
type hostMetrics struct {
	registry     *prometheus.Registry
	starts       *prometheus.CounterVec
	startSeconds prometheus.Histogram
	appends      prometheus.Counter
	calls        *prometheus.CounterVec
	statusWrites *prometheus.CounterVec
	// memoryRefusals counts the starts the host's memory budget refused
	// (each refused start once, however long it waits).
	memoryRefusals prometheus.Counter
	// restores counts reads of the archive for a moved actor (restore.go).
	restores *prometheus.CounterVec
	// archiveFlushes counts the lifecycle steps' uploads of the rest of a
	// chain, by result.
	archiveFlushes *prometheus.CounterVec
}

func newHostMetrics(actors *runtimehandler.MetricsRegistry, running func() float64, env *kubeenv.Watcher) *hostMetrics {
	m := &hostMetrics{
		registry: prometheus.NewRegistry(),
		starts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "troupe_host_actor_starts_total",
			Help: "Actor starts by result: ok, or the reason the start failed.",
		}, []string{"result"}),
		startSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "troupe_host_actor_start_seconds",
			Help:    "Time from seeing an assignment to the actor's init returning: fetch, env, compile, instantiate and init.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1ms to 33s
		}),
		appends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "troupe_host_chain_appends_total",
			Help: "Events the host's actors appended to their chains (the earlier events of a chain resumed on this node are not counted).",
		}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "troupe_host_calls_total",
			Help: "Calls the host made into actors' exports, by export (init, tick) and result (ok, or the failure's reason); ok ticks are counted within a status interval.",
		}, []string{"export", "result"}),
		statusWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "troupe_host_status_writes_total",
			Help: "Actor status writes by result: ok, conflict (retried), skipped (no longer assigned here) or error.",
		}, []string{"result"}),
		archiveFlushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "troupe_host_archive_flushes_total",
			Help: "Uploads of the rest of a chain when its run ended (stop, suspend, delete, shutdown, a move), by result: ok, or error (the step went on after the flush timeout; the events stay on the node).",
		}, []string{"result"}),
		memoryRefusals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "troupe_host_memory_start_refusals_total",
			Help: "Actor starts refused because they would pass the host's memory budget (reason InsufficientMemory).",
		}),
	}
	m.registry.MustRegister(m.memoryRefusals, m.archiveFlushes, m.starts, m.startSeconds, m.appends, m.calls, m.statusWrites,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "troupe_host_actors_running",
			Help: "Actors the host runs now.",
		}, running),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "troupe_host_env_watches",
			Help: "ConfigMaps and Secrets watched for the actors' env (one watch per referenced object).",
		}, func() float64 { return float64(env.Stats().Watches) }),
	)
	if actors != nil {
		m.registry.MustRegister(actors)
	}
	m.restores = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "troupe_host_archive_restores_total",
		Help: "Restores of moved actors from the archive by result: ok, or ArchiveError for a read that failed or did not verify (retried).",
	}, []string{"result"})
	m.registry.MustRegister(m.restores)
	return m
}
