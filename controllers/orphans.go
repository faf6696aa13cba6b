package controllers

import (
	"context"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/troupe-dev/troupe/internal/archive"
)

// Defaults of the orphan collection (docs/archive.md#orphans).
const (
	// DefaultArchiveOrphanGrace is how old an object no manifest names
	// must be before it is removed (cmd/manager's --archive-orphan-grace).
	// An upload PUTs its objects and then, within one attempt, the
	// manifest naming them: at most the host's attempt timeout (30 s) or
	// --archive-flush-timeout (30 s). An hour is over a hundred times
	// that, and absorbs any sane clock skew between the manager and the
	// store, whose times the objects carry.
	DefaultArchiveOrphanGrace = time.Hour
	// MinArchiveOrphanGrace is the least the flag accepts: ten times the
	// default flush timeout.
	MinArchiveOrphanGrace = 5 * time.Minute
	// DefaultArchiveOrphanInterval is how often the leader runs a pass;
	// each lists at most DefaultOrphanKeysPerPass keys (about ten LIST
	// requests and a page read per 256 segments), so a walk of the whole
	// archive covers 14 million keys a day.
	DefaultArchiveOrphanInterval = time.Minute
)

// The collection's metrics, on controller-runtime's registry.
var (
	orphanPasses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "troupe_manager_archive_orphan_passes_total",
		Help: "Passes of the archive's orphan collection by result: ok, or error (something could not be read or removed; what it concerned is kept and tried again).",
	}, []string{"result"})
	orphanKeysScanned = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "troupe_manager_archive_orphan_keys_scanned_total",
		Help: "Keys under actors/ the orphan collection listed.",
	})
	orphansCollected = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "troupe_manager_archive_orphans_collected_total",
		Help: "Objects no manifest or page names (segments, states, pages of failed or fenced uploads), older than the grace, removed.",
	})
	orphanBytesCollected = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "troupe_manager_archive_orphans_collected_bytes_total",
		Help: "Bytes of the orphaned objects removed.",
	})
	orphanWalks = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "troupe_manager_archive_orphan_walks_total",
		Help: "Walks of the orphan collection that reached the archive's end (the next pass starts again from the beginning).",
	})
)

func init() {
	ctrlmetrics.Registry.MustRegister(orphanPasses, orphanKeysScanned, orphansCollected, orphanBytesCollected, orphanWalks)
}

// orphanCollector runs archive.Collector passes on the leader: one per
// cluster, beside the retention sweep. Its place in the walk is in memory;
// a new leader starts from the beginning.
type orphanCollector struct {
	c        *archive.Collector
	interval time.Duration
	grace    time.Duration
	where    string
	log      logr.Logger
}

func newOrphanCollector(s ArchiveSettings, now func() time.Time) (*orphanCollector, error) {
	if s.OrphanGrace <= 0 {
		s.OrphanGrace = DefaultArchiveOrphanGrace
	}
	if s.OrphanInterval <= 0 {
		s.OrphanInterval = DefaultArchiveOrphanInterval
	}
	if s.Now != nil {
		now = s.Now
	}
	c, err := archive.NewCollector(s.Store, archive.CollectOptions{Grace: s.OrphanGrace, KeysPerPass: s.OrphanKeysPerPass, Now: now})
	if err != nil {
		return nil, err
	}
	return &orphanCollector{c: c, interval: s.OrphanInterval, grace: s.OrphanGrace, where: s.Where}, nil
}

// Start runs a pass every interval until ctx ends.
func (o *orphanCollector) Start(ctx context.Context) error {
	o.log = ctrl.LoggerFrom(ctx).WithName("archive-orphans").WithValues("archive", o.where)
	o.log.Info("collecting the archive's orphaned objects", "grace", o.grace.String(), "interval", o.interval.String())
	t := time.NewTicker(o.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		o.pass(ctx)
	}
}

// pass runs one pass, bounded by a few store calls' time, and says what
// it did: a log line a pass (at a higher verbosity when it removed
// nothing), the metrics.
func (o *orphanCollector) pass(ctx context.Context) archive.CollectResult {
	pctx, cancel := context.WithTimeout(ctx, 5*storeCallTimeout)
	defer cancel()
	start := time.Now()
	res, err := o.c.Pass(pctx)
	orphanKeysScanned.Add(float64(res.Listed))
	orphansCollected.Add(float64(res.Collected))
	orphanBytesCollected.Add(float64(res.Bytes))
	if res.Wrapped {
		orphanWalks.Inc()
	}
	kv := []any{"from", res.From, "to", res.To, "listed", res.Listed, "candidates", res.Candidates,
		"collected", res.Collected, "bytes", res.Bytes, "undecided", res.Undecided, "wrapped", res.Wrapped,
		"took", time.Since(start).Round(time.Millisecond).String()}
	switch {
	case err != nil && ctx.Err() == nil:
		orphanPasses.WithLabelValues("error").Inc()
		o.log.Error(err, "collecting orphaned objects; what could not be decided is kept", kv...)
	case err == nil:
		orphanPasses.WithLabelValues("ok").Inc()
		o.log.Info("collected orphaned objects", kv...)
	}
	return res
}
