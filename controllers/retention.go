package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/objstore"
)

// Defaults of the archive's retention (docs/archive.md#retention).
const (
	// DefaultArchiveRetention is how long a deleted Actor's archive is kept
	// (cmd/manager's --archive-retention): long enough to read or restore
	// the history of an Actor deleted by mistake.
	DefaultArchiveRetention = 7 * 24 * time.Hour
	// DefaultArchiveSweepInterval is how often the leader looks for
	// archives past their retention.
	DefaultArchiveSweepInterval = 10 * time.Minute
	// tombstoneTimeout bounds how long a deleted Actor waits for its
	// tombstone to be written (the store is down): past it the Actor is
	// released, with a Warning naming the archive that is now kept for
	// good.
	tombstoneTimeout = 10 * time.Minute
	// storeCallTimeout bounds one store call of the manager.
	storeCallTimeout = 30 * time.Second
)

// ArchiveSettings are the manager's side of the archive: the store, and
// how long a deleted Actor's archive is kept.
type ArchiveSettings struct {
	// Store is the installation's object store.
	Store objstore.Store
	// Where names it without credentials, for logs and Events.
	Where string
	// Retention is how long a deleted Actor's archive is kept; zero
	// removes it at the next sweep, which a deletion starts at once.
	Retention time.Duration
	// SweepInterval: zero means DefaultArchiveSweepInterval.
	SweepInterval time.Duration
	// OrphanGrace is how old an object no manifest names must be before
	// the orphan collection removes it, and how long a tombstone outlives
	// the removal of its archive (which is done again before the tombstone
	// goes, for uploads that were in flight); zero means
	// DefaultArchiveOrphanGrace.
	OrphanGrace time.Duration
	// OrphanInterval is how often the orphan collection runs a pass, of at
	// most OrphanKeysPerPass keys; zero means the defaults.
	OrphanInterval    time.Duration
	OrphanKeysPerPass int
	// Now is the sweep's clock, against the tombstones' deletion times;
	// nil means the reconciler's.
	Now func() time.Time
}

// The retention's metrics, on controller-runtime's registry (the manager's
// /metrics). Registered once per process: test suites run many managers.
var (
	sweepsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "troupe_manager_archive_sweeps_total",
		Help: "Sweeps of the archive's tombstones by result: ok, or error (the store failed; retried at the next sweep).",
	}, []string{"result"})
	archivesExpired = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "troupe_manager_archive_expired_total",
		Help: "Archives of deleted Actors removed after their retention, with their tombstones (which outlive the archive by the orphan grace).",
	})
	archiveObjectsDeleted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "troupe_manager_archive_objects_deleted_total",
		Help: "Objects removed from the archive by the retention (segments, states, manifests, index entries, tombstones).",
	})
	tombstonesPending = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "troupe_manager_archive_tombstones",
		Help: "Tombstones kept at the last sweep: deleted Actors whose archive waits for its retention, or whose archive was removed and whose tombstone waits for the orphan grace.",
	})
	tombstonesBad = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "troupe_manager_archive_bad_tombstones",
		Help: "Objects under deleted/ that are not tombstones this manager reads, at the last sweep (left alone).",
	})
	tombstoneWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "troupe_manager_archive_tombstone_writes_total",
		Help: "Tombstones written for deleted Actors, by result: ok or error.",
	}, []string{"result"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(sweepsTotal, archivesExpired, archiveObjectsDeleted, tombstonesPending, tombstonesBad, tombstoneWrites)
}

// writeTombstone records in the store that the deleted Actor's archive is
// to be removed after the retention, before the Actor's finalizer goes:
// once the Actor is gone, its id is known nowhere else. It reports whether
// the Actor may be released. A store that refuses keeps the Actor (the
// error retries with backoff) until tombstoneTimeout after its deletion;
// then it goes, and a Warning says its archive is kept until removed by
// hand.
func (r *ActorReconciler) writeTombstone(ctx context.Context, s *scope) (bool, error) {
	a := s.actor
	if r.Archive == nil || a.Status.ActorID == "" || archive.ValidActorID(a.Status.ActorID) != nil {
		return true, nil
	}
	ctx, cancel := context.WithTimeout(ctx, storeCallTimeout)
	defer cancel()
	err := archive.PutTombstone(ctx, r.Archive.Store, archive.Tombstone{
		ActorID: a.Status.ActorID, Namespace: a.Namespace, Name: a.Name, UID: string(a.UID), DeletedAt: a.DeletionTimestamp.Time,
	})
	if err == nil {
		tombstoneWrites.WithLabelValues("ok").Inc()
		if r.Archive.Retention == 0 {
			r.sweeper.poke()
		}
		return true, nil
	}
	tombstoneWrites.WithLabelValues("error").Inc()
	if s.now.Before(a.DeletionTimestamp.Add(tombstoneTimeout)) {
		s.event(corev1.EventTypeWarning, v1alpha1.EventArchiveUnavailable, "Delete",
			"the archive %s did not take the deletion's record (retrying, for up to %s since the deletion): %v", r.Archive.Where, tombstoneTimeout, err)
		return false, fmt.Errorf("recording the deletion of %s in the archive: %w", s.key, err)
	}
	s.event(corev1.EventTypeWarning, v1alpha1.EventArchiveUnavailable, "Delete",
		"the archive %s did not take the deletion's record for %s: released anyway; the archive of actor id %s is kept until removed by hand (%v)",
		r.Archive.Where, tombstoneTimeout, a.Status.ActorID, err)
	return true, nil
}

// archiveSweeper removes the archives of deleted Actors once their
// retention passed. It runs on the leader only (a Runnable without
// NeedLeaderElection false), and keeps no state: the tombstones in the
// store are the whole of it, so a restarted or new leader goes on where
// the last one stopped.
type archiveSweeper struct {
	settings ArchiveSettings
	now      func() time.Time
	log      logr.Logger
	pokes    chan struct{}
}

func newArchiveSweeper(s ArchiveSettings, now func() time.Time) *archiveSweeper {
	if s.SweepInterval <= 0 {
		s.SweepInterval = DefaultArchiveSweepInterval
	}
	if s.OrphanGrace <= 0 {
		s.OrphanGrace = DefaultArchiveOrphanGrace
	}
	if s.Now != nil {
		now = s.Now
	}
	return &archiveSweeper{settings: s, now: now, pokes: make(chan struct{}, 1)}
}

// poke asks for a sweep now (a deletion with no retention).
func (w *archiveSweeper) poke() {
	if w == nil {
		return
	}
	select {
	case w.pokes <- struct{}{}:
	default:
	}
}

// Start sweeps at once, then every SweepInterval, when poked, and when a
// tombstone's retention or grace ends before the next interval, until ctx
// ends.
func (w *archiveSweeper) Start(ctx context.Context) error {
	w.log = ctrl.LoggerFrom(ctx).WithName("archive-retention").WithValues("archive", w.settings.Where)
	w.log.Info("keeping deleted actors' archives", "retention", w.settings.Retention.String(), "sweepInterval", w.settings.SweepInterval.String(),
		"tombstoneGrace", w.settings.OrphanGrace.String())
	t := time.NewTimer(w.settings.SweepInterval)
	defer t.Stop()
	for {
		res, err := w.sweep(ctx)
		if err != nil && ctx.Err() == nil {
			w.log.Error(err, "sweeping the archive's tombstones; trying again at the next sweep")
		}
		wait := w.settings.SweepInterval
		if !res.next.IsZero() {
			wait = min(wait, max(res.next.Sub(w.now()), 10*time.Millisecond))
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-w.pokes:
		}
	}
}

// sweepResult is what one sweep did.
type sweepResult struct {
	expired, kept, bad, objects int
	// next is when a kept tombstone's retention or grace ends; zero when
	// none is kept.
	next time.Time
}

// sweep lists the tombstones and removes the archives past their
// retention. Their tombstones stay an OrphanGrace longer (hosts go on
// skipping the actor); then the archive is removed once more, for what an
// upload in flight at the first removal put (a retention shorter than the
// hosts' flush timeout leaves that window), and the tombstone goes. An
// archive that fails to go is tried again at the next sweep; the others
// go on.
func (w *archiveSweeper) sweep(ctx context.Context) (sweepResult, error) {
	var res sweepResult
	lctx, cancel := context.WithTimeout(ctx, storeCallTimeout)
	tombs, bad, err := archive.Tombstones(lctx, w.settings.Store)
	cancel()
	if err != nil {
		sweepsTotal.WithLabelValues("error").Inc()
		return res, err
	}
	res.bad = len(bad)
	for _, b := range bad {
		w.log.Info("not a tombstone this manager reads; left alone", "key", b.Key, "reason", b.Err.Error())
	}
	now := w.now()
	keep := func(until time.Time) {
		res.kept++
		if res.next.IsZero() || until.Before(res.next) {
			res.next = until
		}
	}
	var errs []error
	for _, t := range tombs {
		due := t.DeletedAt.Add(w.settings.Retention)
		if now.Before(due) {
			keep(due)
			continue
		}
		final := due.Add(w.settings.OrphanGrace)
		ectx, cancel := context.WithTimeout(ctx, 5*storeCallTimeout)
		var n int
		if now.Before(final) {
			n, err = archive.RemoveArchive(ectx, w.settings.Store, t)
			keep(final)
		} else {
			n, err = archive.Expire(ectx, w.settings.Store, t)
		}
		cancel()
		res.objects += n
		archiveObjectsDeleted.Add(float64(n))
		if err != nil {
			if !now.Before(final) {
				res.kept++
			}
			errs = append(errs, fmt.Errorf("removing the archive of %s/%s (%s): %w", t.Namespace, t.Name, t.ActorID, err))
			continue
		}
		if now.Before(final) {
			if n > 1 { // more than the name entry, which goes each time
				w.log.Info("removed a deleted actor's archive after its retention; its tombstone stays for the grace", "namespace", t.Namespace, "name", t.Name,
					"actorID", t.ActorID, "deletedAt", t.DeletedAt, "objects", n, "tombstoneUntil", final)
			}
			continue
		}
		res.expired++
		archivesExpired.Inc()
		w.log.Info("removed a deleted actor's archive and its tombstone", "namespace", t.Namespace, "name", t.Name,
			"actorID", t.ActorID, "deletedAt", t.DeletedAt, "objects", n)
	}
	tombstonesPending.Set(float64(res.kept))
	tombstonesBad.Set(float64(res.bad))
	if err := errors.Join(errs...); err != nil {
		sweepsTotal.WithLabelValues("error").Inc()
		return res, err
	}
	sweepsTotal.WithLabelValues("ok").Inc()
	if res.expired > 0 || res.bad > 0 {
		w.log.Info("swept the archive", "expired", res.expired, "kept", res.kept, "bad", res.bad, "objects", res.objects)
	}
	return res, nil
}
