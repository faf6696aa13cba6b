package host

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/archiver"
	"github.com/troupe-dev/troupe/internal/textutil"
)

// The host's side of the archive (docs/archive.md): a run claims the
// actor's archive for its epoch before the actor runs, ships its chain
// while it runs, and flushes the rest before the host reports a lifecycle
// step done. Without Config.Archive none of this happens.

// claimBackoff bounds the wait between claims while the store is down.
const (
	claimBackoffMin = time.Second
	claimBackoffMax = time.Minute
)

// runArchive is a run's archive: its epoch's Writer once claimed, and the
// Shipper while the actor runs. Guarded by run.mu.
type runArchive struct {
	w       *archive.Writer
	shipper *archiver.Shipper
}

// newArchiver builds the host's Archiver when the installation has an
// archive.
func (h *Host) newArchiver() error {
	if h.cfg.Archive == nil {
		return nil
	}
	ar, err := archiver.New(archiver.Options{
		RecoveryPoint: h.cfg.Archive.RecoveryPoint, SegmentBytes: h.cfg.Archive.SegmentBytes,
		Concurrency: h.cfg.Archive.Uploads, LocalTail: h.cfg.Archive.LocalTail, Registerer: h.metrics.registry, Logger: h.log.WithName("archive"),
	})
	if err != nil {
		return fmt.Errorf("configuring the archive: %w", err)
	}
	h.archiver = ar
	return nil
}

// claimArchive makes the run's epoch the writer of the actor's archive,
// before the actor runs (a host that ran an epoch that never claimed would
// write a divergent continuation), and records the actor's name in the
// index. While the store cannot be reached it retries with backoff,
// reporting Ready=False reason ArchiveError; a later epoch's claim
// (ErrFenced: this host lost the assignment) is reported with reason
// Fenced and not retried; a deleted Actor's (a tombstone in the store) is
// not claimed and not run. It returns false when the actor must not start
// (the run was stopped meanwhile, fenced, or the Actor deleted).
func (h *Host) claimArchive(ctx context.Context, r *run, a *v1alpha1.Actor) bool {
	if h.archiver == nil {
		return true
	}
	if !h.waitLeftovers(ctx, r.dir) {
		return false
	}
	st := h.cfg.Archive.Store
	backoff := claimBackoffMin
	reported := ""
	for {
		// A claim writes a manifest: for a deleted Actor (its tombstone is
		// in the store: the run raced the deletion) it would recreate the
		// archive the retention removes.
		deleted, err := archive.HasTombstone(ctx, st, r.actorID)
		if err == nil && deleted {
			msg := textutil.Truncate(fmt.Sprintf("the Actor was deleted (%s holds %s): this host does not run it",
				h.cfg.Archive.Where, archive.TombstoneKey(r.actorID)), maxMessage)
			h.report(r, true, func(v *view) {
				v.ready = &readyCond{status: metav1.ConditionFalse, reason: v1alpha1.ReasonArchiveError, message: msg}
			})
			h.log.Info("the actor's archive has a tombstone: not claiming it, not starting it", "actor", r.key, "epoch", r.epoch)
			<-ctx.Done()
			return false
		}
		var w *archive.Writer
		if err == nil {
			w, err = archive.Claim(ctx, st, archive.ClaimOptions{ActorID: r.actorID, Epoch: r.epoch, Host: h.cfg.PodName, Node: h.cfg.NodeName})
		}
		if err == nil {
			err = archive.PutIndex(ctx, st, archive.IndexEntry{Namespace: a.Namespace, Name: a.Name, ActorID: r.actorID,
				UID: string(a.UID), Created: a.CreationTimestamp.Time})
		}
		if ctx.Err() != nil {
			return false
		}
		if err == nil {
			r.mu.Lock()
			r.arch.w = w
			r.mu.Unlock()
			return true
		}
		if errors.Is(err, archive.ErrFenced) {
			msg := textutil.Truncate(fmt.Sprintf("a later epoch than %d claimed the actor's archive in %s: this host lost the assignment and does not run it (%v)",
				r.epoch, h.cfg.Archive.Where, err), maxMessage)
			h.report(r, true, func(v *view) {
				v.ready = &readyCond{status: metav1.ConditionFalse, reason: v1alpha1.ReasonArchiveFenced, message: msg}
				v.archived = &readyCond{status: metav1.ConditionFalse, reason: v1alpha1.ReasonArchiveFenced, message: msg}
			})
			h.event(a, corev1.EventTypeWarning, v1alpha1.ReasonArchiveFenced, "Start", msg)
			h.log.Info("the actor's archive belongs to a later epoch: not starting it", "actor", r.key, "epoch", r.epoch, "error", err.Error())
			<-ctx.Done()
			return false
		}
		msg := textutil.Truncate(fmt.Sprintf("claiming the actor's archive in %s before it runs (retrying): %v", h.cfg.Archive.Where, err), maxMessage)
		if msg != reported {
			reported = msg
			h.report(r, true, func(v *view) {
				v.ready = &readyCond{status: metav1.ConditionFalse, reason: v1alpha1.ReasonArchiveError, message: msg}
			})
			h.event(a, corev1.EventTypeWarning, v1alpha1.ReasonArchiveError, "Start", msg)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Duration(float64(backoff) * (0.8 + 0.4*rand.Float64()))):
		}
		backoff = min(2*backoff, claimBackoffMax)
	}
}

// shipArchive starts uploading the running actor's chain under the run's
// claim. A chain file that does not continue what the archive holds is
// reported in the Archived condition; the actor runs on.
func (h *Host) shipArchive(r *run, a *v1alpha1.Actor, actor *actorhost.Actor) {
	r.mu.Lock()
	w := r.arch.w
	r.mu.Unlock()
	if h.archiver == nil || w == nil {
		return
	}
	log := h.log.WithValues("actor", r.key, "epoch", r.epoch)
	ctx, cancel := context.WithTimeout(r.ctx, h.cfg.Archive.FlushTimeout)
	defer cancel()
	s, err := h.archiver.Ship(ctx, w, archiver.ActorSource(actor), log, func(st archiver.Status) { h.archiveStatus(r, a, st) })
	if err != nil {
		if r.ctx.Err() == nil {
			h.archiveStatus(r, a, archiver.Status{Reason: v1alpha1.ReasonArchiveUnavailable, Warn: true,
				Message: "the host cannot archive this run's chain: " + err.Error()})
		}
		return
	}
	r.mu.Lock()
	r.arch.shipper = s
	r.mu.Unlock()
}

// flushArchive uploads what the ended run's chain holds beyond the
// archive, before the host reports the lifecycle step that ended it: at
// most FlushTimeout, after which (the store is down) it says so in the
// Archived condition and a Warning Event, and the step goes on: a delete
// never hangs on the store. The events stay on the node.
func (h *Host) flushArchive(r *run, a *v1alpha1.Actor, actor *actorhost.Actor) {
	r.mu.Lock()
	s, w := r.arch.shipper, r.arch.w
	r.arch.shipper, r.arch.w = nil, nil
	r.mu.Unlock()
	if h.archiver == nil || w == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.Archive.FlushTimeout)
	defer cancel()
	begin := time.Now()
	var err error
	if s == nil {
		// The run ended before it shipped (its init failed, or it was
		// stopped as it started): its events are archived all the same.
		s, err = h.archiver.Ship(ctx, w, archiver.ActorSource(actor), h.log.WithValues("actor", r.key, "epoch", r.epoch),
			func(st archiver.Status) { h.archiveStatus(r, a, st) })
	}
	if err == nil {
		err = s.Flush(ctx)
	}
	switch {
	case err == nil:
		h.log.V(1).Info("archived the rest of the chain", "actor", r.key, "epoch", r.epoch, "length", s.Archived(), "took", time.Since(begin))
		h.metrics.archiveFlushes.WithLabelValues("ok").Inc()
	case errors.Is(err, archive.ErrFenced):
		// The shipper said so already.
	default:
		h.metrics.archiveFlushes.WithLabelValues("error").Inc()
		msg := fmt.Sprintf("the run ended, but the rest of its chain could not be archived within %s: %v; it stays on node %s until a host uploads it",
			h.cfg.Archive.FlushTimeout, err, h.cfg.NodeName)
		h.log.Info("could not archive the rest of a chain", "actor", r.key, "epoch", r.epoch, "error", err.Error())
		h.archiveStatus(r, a, archiver.Status{Reason: v1alpha1.ReasonArchiveUnavailable, Message: msg, Warn: true})
	}
}

// archiveStatus puts a shipper's status into the Archived condition, with
// a Warning Event when it asks for one.
func (h *Host) archiveStatus(r *run, a *v1alpha1.Actor, st archiver.Status) {
	status := metav1.ConditionFalse
	if st.Reason == v1alpha1.ReasonArchiveUpToDate {
		status = metav1.ConditionTrue
	}
	msg := textutil.Truncate(st.Message, maxMessage)
	h.report(r, st.Warn, func(v *view) { v.archived = &readyCond{status: status, reason: st.Reason, message: msg} })
	if st.Warn {
		h.event(a, corev1.EventTypeWarning, v1alpha1.EventArchiveUnavailable, "Archive", msg)
	} else if st.Reason == v1alpha1.ReasonArchiveFenced {
		h.event(a, corev1.EventTypeWarning, v1alpha1.ReasonArchiveFenced, "Archive", msg)
	}
}

// archiveStopWait is how much longer a stop waits for a runner when
// the runner flushes to the archive.
func (h *Host) archiveStopWait() time.Duration {
	if h.archiver == nil {
		return 0
	}
	return h.cfg.Archive.FlushTimeout
}

// leftoverConcurrency bounds the directories a host's start uploads the
// leftovers of at once (each holds one upload slot while it uploads).
const leftoverConcurrency = 4

// startLeftovers looks, as the host starts and before any run, for the
// actor directories on this node whose chains hold events the archive
// does not (a host that crashed, or stopped while the store was down),
// and uploads them in the background under the epoch that wrote them
// (archiver.ShipLeftovers). A run on one of these directories waits for
// its leftovers first (waitLeftovers), so that two writers never upload
// one epoch.
func (h *Host) startLeftovers(ctx context.Context, wg *sync.WaitGroup) {
	if h.archiver == nil {
		return
	}
	dirs, _ := filepath.Glob(filepath.Join(h.cfg.DataDir, "*", "*", "*", actordir.ChainFile))
	h.leftovers = map[string]chan struct{}{}
	var todo []string
	for _, p := range dirs {
		dir := filepath.Dir(p)
		if strings.HasPrefix(filepath.Base(filepath.Dir(filepath.Dir(dir))), "_") {
			continue // a reserved directory, not a namespace
		}
		h.leftovers[dir] = make(chan struct{})
		todo = append(todo, dir)
	}
	if len(todo) == 0 {
		return
	}
	sem := make(chan struct{}, leftoverConcurrency)
	for _, dir := range todo {
		wg.Go(func() {
			defer close(h.leftovers[dir])
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			lctx, cancel := context.WithTimeout(ctx, h.cfg.Archive.FlushTimeout)
			defer cancel()
			res, err := h.archiver.ShipLeftovers(lctx, h.cfg.Archive.Store, dir, h.cfg.PodName, h.cfg.NodeName, 0)
			switch {
			case err != nil:
				h.log.Error(err, "could not archive the events an earlier run left on this node; they stay here", "dir", dir)
			case res.To > res.From:
				h.log.Info("archived the events an earlier run left on this node", "dir", dir, "actorID", res.ActorID,
					"epoch", res.Epoch, "from", res.From, "to", res.To)
			case res.Skipped != "":
				h.log.V(1).Info("left the events on this node", "dir", dir, "why", res.Skipped)
			}
		})
	}
}

// waitLeftovers waits until the leftovers of dir, if any, were uploaded
// (or given up on); false when ctx ended first.
func (h *Host) waitLeftovers(ctx context.Context, dir string) bool {
	ch := h.leftovers[dir]
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}
