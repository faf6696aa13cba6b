package host

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/textutil"
)

// restoreRetryFirst is the first wait between two reads of the archive
// while a restore waits (WaitForNode) or fails (ArchiveError); it doubles
// up to ArchiveConfig.RestoreRetry.
const restoreRetryFirst = time.Second

// chainStart says where a run's chain starts (PROTOCOL.md#chain-continuity):
// the local chain when it holds the head in status (continuation); else,
// with an archive, the archive's history, its head and the state it
// holds, waiting or retrying as restorePolicy and the archive's health
// say; else a new segment linked to the status head, without the state.
// It returns the link the engine starts a segment from (nil: the local
// chain goes on, or a new chain starts), the name the old local chain was
// moved to, and what the archive gave; ok is false when the run was
// stopped meanwhile or failed (reported).
func (h *Host) chainStart(ctx context.Context, r *run, a *v1alpha1.Actor) (*actorhost.ChainLink, string, *restoreOutcome, bool) {
	link, moved, err := continuation(r.dir, a.Status.Chain, time.Now())
	if err != nil {
		h.failStart(r, a, nil, v1alpha1.ReasonHostError, err.Error())
		return nil, "", nil, false
	}
	id := a.Status.ActorID
	if h.cfg.Archive == nil || archive.ValidActorID(id) != nil {
		return link, moved, nil, true
	}
	if link == nil && !noLocalChain(r.dir, a.Status.Chain) {
		// The local chain goes on: it holds all the archive could.
		return link, moved, nil, true
	}
	out, ok := h.restoreLoop(ctx, r, a, id, link, a.Spec.RestorePolicy)
	if !ok {
		return nil, "", nil, false
	}
	return out.link(), moved, out, true
}

// settleClaim checks, once the run claimed the archive, that the segment
// the restore chose continues what the claim accepted. An earlier epoch's
// host that was still uploading between the restore and the claim moved
// the archive's tip: the restore is done again, from the history the claim
// fixed (no upload of an earlier epoch can change it now, so there is
// nothing to wait for whatever restorePolicy says). It returns the link
// to start from.
func (h *Host) settleClaim(ctx context.Context, r *run, a *v1alpha1.Actor, link *actorhost.ChainLink, out *restoreOutcome) (*actorhost.ChainLink, *restoreOutcome, bool) {
	r.mu.Lock()
	w := r.arch.w
	r.mu.Unlock()
	if w == nil || out == nil {
		return link, out, true
	}
	tip, has := w.Tip()
	if has && link != nil && link.Head == tip.Head && link.Length == tip.Length {
		return link, out, true
	}
	if !has && (link == nil || link.Restored == nil) {
		return link, out, true
	}
	h.log.Info("the archive moved between the restore and the claim: restoring again", "actor", r.key, "epoch", r.epoch,
		"restoredLength", nodeLength(link), "claimedLength", tip.Length)
	again, ok := h.restoreLoop(ctx, r, a, a.Status.ActorID, out.status, v1alpha1.RestoreFromArchive)
	if !ok {
		return nil, nil, false
	}
	return again.link(), again, true
}

func nodeLength(l *actorhost.ChainLink) uint64 {
	if l == nil {
		return 0
	}
	return l.Length
}

// noLocalChain reports whether a run with no head in status finds no
// chain of its own: then the archive may still hold a history the status
// never heard of (a host that died before its first status write).
func noLocalChain(dir string, st *v1alpha1.ChainStatus) bool {
	if st != nil && st.Head != "" && st.Length > 0 {
		return false
	}
	_, _, ok := localHead(dir)
	return !ok
}

// restoreOutcome is what the archive gave a run, reported once it started.
type restoreOutcome struct {
	// status is the head the cluster knew (nil: none), which a start
	// without the archive's history continues.
	status *actorhost.ChainLink
	// restored is the link to start from when the archive held a history
	// (with the state and the gap, if any); nil when it held none.
	restored *actorhost.ChainLink
	// why says why nothing was restored.
	why string
	// verified segments, and how long reading the archive took.
	verified int
	took     time.Duration
}

// link is where the run starts: the archive's history, or the status
// head without the state.
func (o *restoreOutcome) link() *actorhost.ChainLink {
	if o.restored != nil {
		return o.restored
	}
	return o.status
}

// restoreLoop reads the archive until it gives a start: the history and
// its state, or none. While restorePolicy WaitForNode waits for the old
// node's uploads, or the archive cannot be read or does not verify, it
// says so in Ready (WaitingForNode, ArchiveError) and an Event, and reads
// again with backoff; it never claims the archive meanwhile, which would
// fence the old node's uploads. ok is false when the run was stopped.
func (h *Host) restoreLoop(ctx context.Context, r *run, a *v1alpha1.Actor, id string, status *actorhost.ChainLink, policy v1alpha1.RestorePolicy) (*restoreOutcome, bool) {
	wait := min(restoreRetryFirst, h.cfg.Archive.RestoreRetry)
	reported := ""
	for {
		out, waitMsg, err := h.tryRestore(ctx, a, id, status, policy)
		if ctx.Err() != nil {
			return nil, false
		}
		reason, msg, evType := "", "", corev1.EventTypeWarning
		switch {
		case err != nil:
			h.metrics.restores.WithLabelValues(v1alpha1.ReasonArchiveError).Inc()
			reason = v1alpha1.ReasonArchiveError
			msg = textutil.Truncate(fmt.Sprintf("reading the archive (%s): %s; retrying in %s", h.cfg.Archive.Where, err, wait.Round(time.Millisecond)), maxMessage)
		case waitMsg != "":
			reason, msg, evType = v1alpha1.ReasonWaitingForNode, textutil.Truncate(waitMsg, maxMessage), corev1.EventTypeNormal
		default:
			out.status = status
			return out, true
		}
		// Said once per change of what blocks it, not at every retry.
		if key := reason + "\x00" + stripRetry(msg); key != reported {
			reported = key
			h.log.Info("actor waits for its archive", "actor", r.key, "epoch", r.epoch, "reason", reason, "message", msg)
			h.report(r, true, func(v *view) {
				v.ready = &readyCond{status: metav1.ConditionFalse, reason: reason, message: msg}
			})
			h.event(a, evType, reason, "Restore", msg)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, false
		}
		wait = min(2*wait, h.cfg.Archive.RestoreRetry)
	}
}

// stripRetry drops the retry delay from a message, so that a backoff
// growing does not count as a new message.
func stripRetry(msg string) string {
	for i := len(msg) - 1; i > 0; i-- {
		if msg[i] == ';' {
			return msg[:i]
		}
	}
	return msg
}

// tryRestore reads the archive once. It returns the outcome, or a
// message saying why the run waits for the old node, or an error.
func (h *Host) tryRestore(ctx context.Context, a *v1alpha1.Actor, id string, status *actorhost.ChainLink, policy v1alpha1.RestorePolicy) (*restoreOutcome, string, error) {
	st := h.cfg.Archive.Store
	waitForNode := policy == v1alpha1.RestoreWaitForNode && status != nil && status.Length > 0
	begin := time.Now()
	if waitForNode {
		// Read-only until the archive reaches the status head: a claim
		// would fence the old node out of the history for good.
		hist, err := archive.Resolve(ctx, st, id)
		switch {
		case errors.Is(err, archive.ErrNoHistory):
			return &restoreOutcome{why: noHistoryWhy}, "", nil
		case err != nil:
			return nil, "", err
		}
		if tip := hist.Tip(); tip == nil || tip.Length < status.Length {
			return nil, waitingMessage(hist, status), nil
		}
	}
	var want *chain.Link
	if status != nil {
		want = &chain.Link{Head: status.Head, Length: status.Length}
	}
	res, err := archive.RestoreThrough(ctx, st, id, want)
	switch {
	case errors.Is(err, archive.ErrNoHistory):
		return &restoreOutcome{why: noHistoryWhy}, "", nil
	case err != nil:
		return nil, "", err
	}
	out := &restoreOutcome{verified: res.Verified, took: time.Since(begin)}
	if res.Length == 0 {
		// Claimed by an earlier host that uploaded nothing.
		if waitForNode {
			return nil, waitingMessage(nil, status), nil
		}
		out.why = fmt.Sprintf("the archive holds no event of this actor (epoch %d claimed it and uploaded nothing)", res.Epoch)
		return out, "", nil
	}
	link := &actorhost.ChainLink{Head: res.Head, Length: res.Length, Node: nodeOf(status),
		Restored: &actorhost.RestoredState{Epoch: res.Epoch, Event: res.StateEvent, HasState: res.HasState, State: res.State, Sha256: res.StateSha256}}
	if status != nil && !res.Holds {
		if waitForNode && res.Length < status.Length {
			// It fell behind between the two reads (another epoch's claim).
			return nil, fmt.Sprintf("the archive holds events up to %d, the status head is at %d: waiting for node %s to upload them (restorePolicy WaitForNode)",
				res.Length, status.Length, status.Node), nil
		}
		// Behind the status head, or past it on another branch: the
		// events in between died with the old node (or were written after
		// a later epoch took the actor over) and no node can bring them
		// back into the history now.
		link.Lost = &actorhost.ChainLink{Head: status.Head, Length: status.Length, Node: status.Node}
	}
	out.restored = link
	return out, "", nil
}

// noHistoryWhy is why a run with an archive starts without its state
// when the archive never heard of the actor.
const noHistoryWhy = "the archive holds no history of this actor: it never uploaded (its node died before its first upload, or ran without the archive)"

// waitingMessage says what WaitForNode waits for.
func waitingMessage(hist *archive.History, status *actorhost.ChainLink) string {
	have := "no event"
	if hist != nil {
		if tip := hist.Tip(); tip != nil {
			have = fmt.Sprintf("events up to %d (epoch %d)", tip.Length, tip.Epoch)
		}
	}
	node := status.Node
	if node == "" {
		node = "the actor's previous node"
	} else {
		node = "node " + node
	}
	return fmt.Sprintf("the archive holds %s of the %d the status head %s ends: waiting for %s to upload the rest (restorePolicy WaitForNode)",
		have, status.Length, status.Head.Short(), node)
}

// reportRestore says, once the run's segment started, what the archive
// gave it: the Restored Event, and for a gap the ArchiveGap Warning and
// condition; a start without the state says StateLost.
func (h *Host) reportRestore(r *run, a *v1alpha1.Actor, link *actorhost.ChainLink, moved string, out *restoreOutcome) {
	if link.StateLost() {
		why := ""
		if out != nil {
			why = out.why
			if link.Restored != nil {
				why = "the archive records no state of the actor before the events it lost"
			}
		}
		h.stateLost(r, a, link, moved, why)
	}
	if out == nil || link.Restored == nil {
		return
	}
	h.metrics.restores.WithLabelValues("ok").Inc()
	res := link.Restored
	state := "no state (no event records one: init got spec.initialState)"
	switch {
	case res.Event != nil && res.HasState:
		state = fmt.Sprintf("the state of event %d (sha256:%.12s, %d bytes)", *res.Event, res.Sha256, len(res.State))
	case res.Event != nil:
		state = fmt.Sprintf("the state of event %d (none: init returned no state)", *res.Event)
	}
	msg := fmt.Sprintf("restored from the archive (%s, epoch %d) on node %s: %s; the chain continues from event %d (head %s); verified %d segments in %s",
		h.cfg.Archive.Where, res.Epoch, h.cfg.NodeName, state, link.Length, link.Head.Short(), out.verified, out.took.Round(time.Millisecond))
	if moved != "" {
		msg += fmt.Sprintf("; the chain this node held from an earlier run was moved aside (%s)", moved)
	}
	h.log.Info("actor restored from the archive", "actor", r.key, "epoch", r.epoch, "archiveEpoch", res.Epoch,
		"length", link.Length, "stateEvent", res.Event, "segments", out.verified, "took", out.took)
	h.event(a, corev1.EventTypeNormal, v1alpha1.EventRestored, "Restore", msg)
	if l := link.Lost; l != nil {
		gap := gapMessage(link, l)
		h.log.Info("actor restored with a gap", "actor", r.key, "epoch", r.epoch, "from", link.Length, "to", l.Length, "lostHead", l.Head.String())
		h.report(r, true, func(v *view) { v.archiveGap = textutil.Truncate(gap, maxMessage) })
		h.event(a, corev1.EventTypeWarning, v1alpha1.EventArchiveGap, "Restore", gap)
	}
}

// gapMessage names the events lost between the archive's head and the
// head the cluster last knew.
func gapMessage(link, lost *actorhost.ChainLink) string {
	where := "its previous node"
	if lost.Node != "" {
		where = "node " + lost.Node
	}
	if lost.Length > link.Length {
		return fmt.Sprintf("events %d to %d (up to head %s) were written on %s and never reached the archive: they are lost, and the chain continues from the archive's head at event %d (%s)",
			link.Length, lost.Length-1, lost.Head.Short(), where, link.Length, link.Head.Short())
	}
	return fmt.Sprintf("the head in status (event %d, %s, written on %s) is on a branch the archive's history does not follow (a later epoch continued from an earlier head): the events of that branch are lost, and the chain continues from the archive's head at event %d (%s)",
		lost.Length-1, lost.Head.Short(), where, link.Length, link.Head.Short())
}

func nodeOf(l *actorhost.ChainLink) string {
	if l == nil {
		return ""
	}
	return l.Node
}
