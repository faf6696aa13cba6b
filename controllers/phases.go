package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/placement"
	"github.com/troupe-dev/troupe/internal/textutil"
)

// maxConditionMessage bounds the condition messages the manager builds
// from spec errors or a host's report (Event notes have their own, smaller
// bound: v1alpha1.MaxEventNoteBytes). It matches status.lastError's, so a
// host's whole message fits.
const maxConditionMessage = 4096

// reconcileValidate keeps an Actor whose spec breaks the API's rules off
// every host. The API server rejects such specs at admission; this catches
// Actors admitted by an older, laxer CRD.
func (r *ActorReconciler) reconcileValidate(_ context.Context, s *scope) (bool, error) {
	a := s.actor
	errs := a.Spec.Validate(field.NewPath("spec"), v1alpha1.ValidationOptions{})
	if len(errs) == 0 {
		return false, nil
	}
	msg := textutil.Truncate(errs.ToAggregate().Error(), maxConditionMessage)
	if c := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionScheduled); c == nil || c.Reason != v1alpha1.ReasonInvalidSpec || c.Message != msg {
		s.event(corev1.EventTypeWarning, v1alpha1.EventInvalidSpec, "Validate", "%s", msg)
	}
	s.unplaced(v1alpha1.PhasePending, v1alpha1.ReasonInvalidSpec, msg)
	return true, nil
}

// reconcileIdentity gives the actor its stable id and the finalizer that
// lets its host flush its chain before the Actor goes.
func (r *ActorReconciler) reconcileIdentity(_ context.Context, s *scope) (bool, error) {
	a := s.actor
	if a.Status.ActorID == "" {
		a.Status.ActorID = uuid.NewString()
	}
	controllerutil.AddFinalizer(a, v1alpha1.ChainFlushFinalizer)
	if a.Status.Phase == "" {
		a.Status.Phase = v1alpha1.PhasePending
	}
	return false, nil
}

// reconcileSuspend stops a suspended actor without losing the end of its
// chain: while a live host runs it, the assignment stays (the host, seeing
// spec.suspend, stops the actor, flushes its chain and reports Ready=False
// reason Stopped with the final head, which it may only write while the
// assignment names it); then the actor is unassigned with status.chain as
// the host left it. A dead host, or one that does not answer within
// FlushTimeout, is not waited for. A resumed actor is placed again.
func (r *ActorReconciler) reconcileSuspend(ctx context.Context, s *scope) (bool, error) {
	a := s.actor
	if !a.Spec.Suspend {
		a.Status.SuspendRequestTime = nil
		if a.Status.Phase == v1alpha1.PhaseSuspended {
			a.Status.Phase = v1alpha1.PhasePending
		}
		if c := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionScheduled); c != nil && c.Reason == v1alpha1.ReasonSuspending && a.Status.HostPod != "" {
			// Resumed before the host stopped it (or it did, and restarts
			// it itself for the new generation, on the same epoch): the
			// assignment stands.
			s.setCondition(v1alpha1.ConditionScheduled, metav1.ConditionTrue, v1alpha1.ReasonAssigned, assignedMessage(a))
		}
		return false, nil
	}
	if a.Status.HostPod != "" && !stopped(a.Status.Phase) {
		// A Failed or Succeeded run already published its final head with
		// its end; any other one is still the host's to stop.
		done, err := r.awaitSuspendStop(ctx, s)
		if err != nil || !done {
			return true, err
		}
	} else if a.Status.Phase != v1alpha1.PhaseSuspended || a.Status.HostPod != "" {
		if a.Status.HostPod != "" {
			s.event(corev1.EventTypeNormal, v1alpha1.EventSuspended, "Suspend", "suspended: its run on host %s (epoch %d) had ended; %s", a.Status.HostPod, a.Status.Epoch, chainSummary(a))
		} else {
			s.event(corev1.EventTypeNormal, v1alpha1.EventSuspended, "Suspend", "suspended")
		}
	}
	s.unplaced(v1alpha1.PhaseSuspended, v1alpha1.ReasonSuspended, "spec.suspend is true: the actor is stopped; its state and chain are kept")
	return true, nil
}

// awaitSuspendStop reports whether a suspended actor may leave its host: the
// host reported it Stopped (status.chain is final), the host is dead, or it
// did not answer within FlushTimeout. Until then the actor keeps its
// assignment, Scheduled=False reason Suspending; status.suspendRequestTime
// says since when, so the timeout survives a restart of the manager.
func (r *ActorReconciler) awaitSuspendStop(ctx context.Context, s *scope) (bool, error) {
	a := s.actor
	name := a.Status.HostPod
	if c := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionFalse && c.Reason == v1alpha1.ReasonStopped {
		// The host writes only for the epoch it runs, and every new epoch
		// resets Ready to Starting: this Stopped is this epoch's.
		s.event(corev1.EventTypeNormal, v1alpha1.EventSuspended, "Suspend", "suspended: host %s stopped the actor and published its final chain head (%s)", name, chainSummary(a))
		return true, nil
	}
	if err := r.loadHosts(ctx, s); err != nil {
		return false, err
	}
	if h, ok := s.host(name); !ok || !h.Live(s.now) {
		s.event(corev1.EventTypeWarning, v1alpha1.EventSuspended, "Suspend", "suspended: host %s is gone, so the final chain head could not be published; status keeps the last reported %s (the chain files stay on node %s)", name, chainSummary(a), a.Status.NodeName)
		return true, nil
	}
	s.setCondition(v1alpha1.ConditionScheduled, metav1.ConditionFalse, v1alpha1.ReasonSuspending,
		fmt.Sprintf("spec.suspend is true: waiting for host %s to stop the actor and publish its final chain head (epoch %d)", name, a.Status.Epoch))
	if a.Status.SuspendRequestTime == nil {
		since := metav1.NewTime(s.now)
		a.Status.SuspendRequestTime = &since
		s.event(corev1.EventTypeNormal, v1alpha1.EventSuspended, "Suspend", "suspending: stopping it on host %s (epoch %d); waiting for its final chain head", name, a.Status.Epoch)
		// The host's Stopped report, or its death (the monitor), wakes us
		// earlier.
		s.requeueAfter(r.FlushTimeout)
		return false, nil
	}
	// The API server keeps the time to the second; count from the next
	// one so the wait is never shorter than FlushTimeout.
	deadline := a.Status.SuspendRequestTime.Truncate(time.Second).Add(time.Second + r.FlushTimeout)
	if !s.now.Before(deadline) {
		s.event(corev1.EventTypeWarning, v1alpha1.EventSuspended, "Suspend", "suspended: host %s did not report the actor Stopped within %s, so the final chain head could not be published; status keeps the last reported %s", name, r.FlushTimeout, chainSummary(a))
		return true, nil
	}
	s.requeueAfter(deadline.Sub(s.now))
	return false, nil
}

// reconcileHostHealth takes a live actor off a host that died (its lease
// expired or is gone) or, after a spec change, no longer fits its
// nodeSelector or tolerations; reconcilePlacement then moves it. Stopped
// actors stay: reconcileRestart decides about them.
func (r *ActorReconciler) reconcileHostHealth(ctx context.Context, s *scope) (bool, error) {
	a := s.actor
	if a.Status.HostPod == "" || stopped(a.Status.Phase) {
		return false, nil
	}
	if err := r.loadHosts(ctx, s); err != nil {
		return false, err
	}
	name := a.Status.HostPod
	h, ok := s.host(name)
	switch {
	case !ok:
		s.moveOff(name, "its Lease is gone")
	case refusedForMemory(a):
		// The host had not the memory to start it, whatever its Lease
		// said when it was placed: place it again, not there.
		ready := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionReady)
		s.refused = map[string]placement.Unfit{name: placement.UnfitMemory}
		s.moveOff(name, "it refused to start it: "+ready.Message)
	case !h.Live(s.now):
		s.moveOff(name, fmt.Sprintf("its lease expired at %s", h.Expiry.UTC().Format(time.RFC3339)))
	case !h.Serves(a.Namespace):
		// Put there by a manager that predates the host's namespaces
		// annotation: the host refuses it (NamespaceNotServed) and never
		// will run it.
		s.moveOff(name, fmt.Sprintf("it does not run Actors of namespace %s", a.Namespace))
	case scheduledGeneration(a) < a.Generation && placement.Matches(&h, request(a)) != placement.Fits:
		s.moveOff(name, fmt.Sprintf("after a spec change: %s", placement.Matches(&h, request(a))))
	default:
		// Still fine: the condition now speaks for this generation.
		s.setCondition(v1alpha1.ConditionScheduled, metav1.ConditionTrue, v1alpha1.ReasonAssigned, assignedMessage(a))
	}
	return false, nil
}

// refusedForMemory reports whether the host of the actor's current epoch
// refused to start it for lack of memory (PROTOCOL.md#admission-at-the-host):
// the manager resets Ready with every new epoch, so a host's
// InsufficientMemory on a Scheduled actor is about this one.
func refusedForMemory(a *v1alpha1.Actor) bool {
	c := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionReady)
	return a.Status.Phase == v1alpha1.PhaseScheduled && c != nil &&
		c.Status == metav1.ConditionFalse && c.Reason == v1alpha1.ReasonInsufficientMemory
}

// moveOff unassigns the actor from host, which can't keep it.
func (s *scope) moveOff(host, why string) {
	s.movedFrom, s.moveReason = host, why
	s.log.Info("moving actor off its host", "host", host, "reason", why, "epoch", s.actor.Status.Epoch)
	s.unplaced(v1alpha1.PhasePending, v1alpha1.ReasonHostLost, fmt.Sprintf("host %s can't keep the actor: %s", host, why))
}

// reconcileRestart restarts an actor whose run ended when its restartPolicy
// says so, after min(Base * 2^restarts, Max) of backoff (until
// status.nextRestartTime), with a new epoch on the same host (or a new host
// when that one can't take it). The host already recorded the failure's
// Event; the manager records only what it decides (Restarting). A spec
// change restarts a stopped actor at once, whatever the policy: its live
// host does that itself; the manager only when the host is gone or no
// longer fits the new spec. An actor whose host found its spec invalid is
// not restarted until its spec changes: it would only fail again.
func (r *ActorReconciler) reconcileRestart(ctx context.Context, s *scope) (bool, error) {
	a := s.actor
	if !stopped(a.Status.Phase) {
		a.Status.NextRestartTime = nil
		return false, nil
	}
	ready := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionReady)
	policy := a.Spec.RestartPolicy
	if policy == "" {
		policy = v1alpha1.DefaultRestartPolicy
	}
	invalid := a.Status.Phase == v1alpha1.PhaseFailed && ready != nil && ready.Reason == v1alpha1.ReasonInvalidSpec
	restartable := !invalid && (policy == v1alpha1.RestartAlways || (policy == v1alpha1.RestartOnFailure && a.Status.Phase == v1alpha1.PhaseFailed))
	specChanged := ready != nil && ready.ObservedGeneration != 0 && ready.ObservedGeneration < a.Generation
	if !restartable && !specChanged {
		a.Status.NextRestartTime = nil
		return true, nil
	}

	var why string
	if specChanged {
		if err := r.loadHosts(ctx, s); err != nil {
			return false, err
		}
		if h, ok := s.host(a.Status.HostPod); ok && h.Live(s.now) && placement.Matches(&h, request(a)) == placement.Fits {
			// A live host restarts a stopped actor with its new spec
			// itself, on the same epoch; a new epoch would only start it
			// twice.
			return true, nil
		}
		why = fmt.Sprintf("for spec generation %d", a.Generation)
	} else {
		if a.Status.NextRestartTime == nil || ready == nil || ready.Reason != v1alpha1.ReasonBackOff {
			// First look at this stop (a new report of the host replaces
			// BackOff): start the backoff.
			delay := r.Backoff.Delay(a.Status.Restarts, ranFor(a, s.now))
			// To the second, rounded up, as the API server keeps it: the
			// wait is never shorter than delay.
			at := metav1.NewTime(s.now.Add(delay + time.Second - 1).Truncate(time.Second))
			a.Status.NextRestartTime = &at
			gen := a.Generation
			if ready != nil && ready.ObservedGeneration != 0 {
				// Still the host's run's: a spec change must show.
				gen = ready.ObservedGeneration
			}
			meta.SetStatusCondition(&a.Status.Conditions, metav1.Condition{
				Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonBackOff,
				Message:            textutil.Truncate(fmt.Sprintf("%s; restarting in %s (restartPolicy %s)", stopCause(a, ready), delay, policy), maxConditionMessage),
				ObservedGeneration: gen, LastTransitionTime: metav1.NewTime(s.now),
			})
			s.requeueAfter(at.Sub(s.now))
			return true, nil
		}
		if due := a.Status.NextRestartTime.Time; s.now.Before(due) {
			s.requeueAfter(due.Sub(s.now))
			return true, nil
		}
		why = "after its backoff; it had stopped: " + stopCause(a, ready)
	}

	a.Status.Restarts++
	now := metav1.NewTime(s.now)
	a.Status.LastRestartTime = &now
	a.Status.NextRestartTime = nil
	if err := r.loadHosts(ctx, s); err != nil {
		return false, err
	}
	if h, ok := s.host(a.Status.HostPod); ok && h.Live(s.now) && placement.Matches(&h, request(a)) == placement.Fits {
		s.startEpoch()
		s.event(corev1.EventTypeNormal, v1alpha1.EventRestarting, "Restart", "restart %d on host %s (epoch %d) %s", a.Status.Restarts, a.Status.HostPod, a.Status.Epoch, why)
		return true, nil
	}
	s.event(corev1.EventTypeNormal, v1alpha1.EventRestarting, "Restart", "restart %d %s; host %s can't take it, placing it anew", a.Status.Restarts, why, a.Status.HostPod)
	unassign(a)
	a.Status.Phase = v1alpha1.PhasePending
	s.restarting = true
	return false, nil
}

// reconcilePlacement assigns an unassigned actor to the least loaded live
// host that fits it, with a new epoch. The choice is reserved in the ledger
// at once (and undone if it can't be written), so parallel workers place a
// burst of actors as evenly as one would.
func (r *ActorReconciler) reconcilePlacement(ctx context.Context, s *scope) (bool, error) {
	a := s.actor
	if a.Status.HostPod != "" || (stopped(a.Status.Phase) && !s.restarting) {
		return false, nil
	}
	if err := r.loadHosts(ctx, s); err != nil {
		return false, err
	}
	var h placement.Host
	prev, err := r.ledger.reserve(s.key, func(loads map[string]int) (string, error) {
		for i := range s.hosts {
			s.hosts[i].Load = loads[s.hosts[i].Name]
		}
		var err error
		req := request(a)
		req.Refused = s.refused
		h, err = placement.Pick(s.hosts, req, s.now)
		return h.Name, err
	})
	if err != nil {
		var nh *placement.NoHostError
		if !errors.As(err, &nh) {
			return false, fmt.Errorf("placing: %w", err)
		}
		// The condition says why no host fits now, and follows every
		// change. The Warning is one per wait, and only once the wait
		// outlasts NoHostGrace: a replaced host pod comes back within
		// seconds, and hundreds of its actors would otherwise each raise
		// an alarm (and then each a Moved) for one short fact. When no
		// host serves the actor's namespace, that is a configuration to
		// fix, not a host to wait for: the reason says so, and the
		// Warning comes at once.
		msg := textutil.Truncate(err.Error(), maxConditionMessage)
		reason, eventReason := nh.Reason(), v1alpha1.EventNoHost
		if nh.NotServed {
			reason, eventReason = v1alpha1.ReasonNamespaceNotServed, v1alpha1.ReasonNamespaceNotServed
		}
		s.unplaced(v1alpha1.PhasePending, reason, msg)
		if w, warn := r.waitForHost(s, nh.NotServed); warn {
			s.reportsWait = true
			cause := ""
			if w.movedFrom != "" {
				cause = fmt.Sprintf("host %s can't keep the actor (%s); ", w.movedFrom, w.moveReason)
			}
			s.event(corev1.EventTypeWarning, eventReason, "Place", "no host for %s: %s%s",
				s.now.Sub(w.since).Round(time.Second), cause, msg)
		}
		if nh.Waiting() {
			// A host short of a resource may free it without an event
			// this watch sees (a renewal that shows room wakes it sooner).
			s.requeueAfter(r.FullRetry)
		}
		return true, nil
	}
	if w := r.endWaitForHost(s.key); w != nil && s.movedFrom == "" {
		// The move that began the wait ends here.
		s.movedFrom, s.moveReason = w.movedFrom, w.moveReason
	}
	s.reserved, s.unreserve = true, prev
	a.Status.HostPod, a.Status.NodeName = h.Name, h.Node
	s.startEpoch()
	if s.movedFrom != "" {
		s.event(corev1.EventTypeNormal, v1alpha1.EventMoved, "Move", "moved from host %s (%s) to host %s on node %s (epoch %d)",
			s.movedFrom, s.moveReason, h.Name, h.Node, a.Status.Epoch)
	} else {
		s.event(corev1.EventTypeNormal, v1alpha1.EventPlaced, "Place", "%s", assignedMessage(a))
	}
	return false, nil
}

// waitForHost notes that the actor waits for a host, and reports whether
// the wait is now to be reported: once per wait, once
// it outlasted NoHostGrace (until then it looks again when the grace ends),
// or at once when now.
// A manager that restarts mid-wait counts from the Scheduled condition's
// transition, which an earlier stop may have set sooner.
func (r *ActorReconciler) waitForHost(s *scope, now bool) (wait noHostWait, warn bool) {
	r.noHostMu.Lock()
	defer r.noHostMu.Unlock()
	w := r.noHost[s.key]
	if w == nil {
		w = &noHostWait{since: s.now, movedFrom: s.movedFrom, moveReason: s.moveReason}
		if c := meta.FindStatusCondition(s.orig.Status.Conditions, v1alpha1.ConditionScheduled); c != nil && waitingForHost(c.Reason) {
			w.since = c.LastTransitionTime.Time
		}
		if r.noHost == nil {
			r.noHost = map[types.NamespacedName]*noHostWait{}
		}
		r.noHost[s.key] = w
	}
	if left := w.since.Add(r.NoHostGrace).Sub(s.now); left > 0 && !now {
		s.requeueAfter(left)
		return *w, false
	}
	warn = !w.warned
	w.warned = true
	return *w, warn
}

// unreportWait marks the actor's wait for a host as not reported: the
// reconcile that was to report it failed to write, and its Events were
// dropped. A concurrent reconcile that saw the wait reported may have
// written the same move without a word (testNamespaces).
func (r *ActorReconciler) unreportWait(k types.NamespacedName) {
	r.noHostMu.Lock()
	defer r.noHostMu.Unlock()
	if w := r.noHost[k]; w != nil {
		w.warned = false
	}
}

// endWaitForHost forgets the actor's wait for a host and returns it, if
// there was one.
func (r *ActorReconciler) endWaitForHost(k types.NamespacedName) *noHostWait {
	r.noHostMu.Lock()
	defer r.noHostMu.Unlock()
	w := r.noHost[k]
	delete(r.noHost, k)
	return w
}

// reconcileDelete releases a deleted Actor once its host reported the actor
// Stopped (chain flushed), at once when no live host has it, and after
// FlushTimeout when a live host never answers. With an archive, the
// release waits for the deletion's tombstone (writeTombstone), which starts
// the archive's retention.
func (r *ActorReconciler) reconcileDelete(ctx context.Context, s *scope) (bool, error) {
	a := s.actor
	if !controllerutil.ContainsFinalizer(a, v1alpha1.ChainFlushFinalizer) {
		return true, nil
	}
	release := func(eventType, format string, args ...any) (bool, error) {
		if ok, err := r.writeTombstone(ctx, s); !ok {
			return true, err
		}
		controllerutil.RemoveFinalizer(a, v1alpha1.ChainFlushFinalizer)
		s.event(eventType, v1alpha1.EventFinalizerRemoved, "Delete", format, args...)
		return true, nil
	}
	name := a.Status.HostPod
	if name == "" {
		return release(corev1.EventTypeNormal, "not assigned to a host: nothing to flush")
	}
	if c := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionFalse && c.Reason == v1alpha1.ReasonStopped {
		return release(corev1.EventTypeNormal, "host %s stopped the actor and flushed its chain (%s)", name, chainSummary(a))
	}
	if err := r.loadHosts(ctx, s); err != nil {
		return false, err
	}
	if h, ok := s.host(name); !ok || !h.Live(s.now) {
		return release(corev1.EventTypeWarning, "host %s is gone: the chain could not be flushed; last reported %s", name, chainSummary(a))
	}
	deadline := a.DeletionTimestamp.Add(r.FlushTimeout)
	if !s.now.Before(deadline) {
		return release(corev1.EventTypeWarning, "host %s did not report the actor Stopped within %s: released unflushed; last reported %s", name, r.FlushTimeout, chainSummary(a))
	}
	// The host's Stopped report, or its death (the monitor), wakes us
	// earlier.
	s.requeueAfter(deadline.Sub(s.now))
	return true, nil
}

// setCondition sets a condition of the actor, for its current generation;
// a change of status is dated by the reconciler's clock.
func (s *scope) setCondition(typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&s.actor.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg,
		ObservedGeneration: s.actor.Generation, LastTransitionTime: metav1.NewTime(s.now),
	})
}

// unplaced leaves the actor without a host, in phase, with Scheduled and
// Ready False for reason, and no timer running.
func (s *scope) unplaced(phase v1alpha1.Phase, reason, msg string) {
	unassign(s.actor)
	s.actor.Status.Phase = phase
	s.actor.Status.NextRestartTime, s.actor.Status.SuspendRequestTime = nil, nil
	s.setCondition(v1alpha1.ConditionScheduled, metav1.ConditionFalse, reason, msg)
	s.setCondition(v1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
}

// startEpoch makes a new assignment to the actor's host: a new epoch, which
// the host has yet to start (a Ready left by an earlier run must not
// linger).
func (s *scope) startEpoch() {
	a := s.actor
	a.Status.Epoch++
	a.Status.Phase = v1alpha1.PhaseScheduled
	s.setCondition(v1alpha1.ConditionScheduled, metav1.ConditionTrue, v1alpha1.ReasonAssigned, assignedMessage(a))
	s.setCondition(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonStarting, startingMessage(a))
}

// waitingForHost: a Scheduled reason of an actor that waits for a host to
// take it. The wait is one episode (one Event) whatever its reason becomes.
func waitingForHost(reason string) bool {
	return reason == v1alpha1.ReasonNoHost || reason == v1alpha1.ReasonNamespaceNotServed ||
		reason == v1alpha1.ReasonInsufficientMemory
}

func unassign(a *v1alpha1.Actor) {
	a.Status.HostPod, a.Status.NodeName = "", ""
}

// stopped: the host ran the actor's epoch to its end.
func stopped(p v1alpha1.Phase) bool {
	return p == v1alpha1.PhaseFailed || p == v1alpha1.PhaseSucceeded
}

func request(a *v1alpha1.Actor) placement.Request {
	return placement.Request{Namespace: a.Namespace, NodeSelector: a.Spec.NodeSelector, Tolerations: a.Spec.Tolerations}
}

func scheduledGeneration(a *v1alpha1.Actor) int64 {
	if c := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionScheduled); c != nil {
		return c.ObservedGeneration
	}
	return 0
}

func assignedMessage(a *v1alpha1.Actor) string {
	return fmt.Sprintf("assigned to host %s on node %s (epoch %d)", a.Status.HostPod, a.Status.NodeName, a.Status.Epoch)
}

func startingMessage(a *v1alpha1.Actor) string {
	return fmt.Sprintf("waiting for host %s to start epoch %d", a.Status.HostPod, a.Status.Epoch)
}

// stopCause says how the actor's epoch ended, from the host's report, in
// full: whoever puts it in a condition or an Event cuts the whole text.
func stopCause(a *v1alpha1.Actor, ready *metav1.Condition) string {
	if a.Status.Phase == v1alpha1.PhaseSucceeded {
		return "it called shutdown"
	}
	switch {
	case ready != nil && ready.Reason != v1alpha1.ReasonBackOff && ready.Message != "":
		return ready.Reason + ": " + ready.Message
	case a.Status.LastError != "":
		return a.Status.LastError
	case ready != nil && ready.Reason != v1alpha1.ReasonBackOff:
		return ready.Reason
	}
	return "no reason reported"
}

// ranFor is how long the actor ran between its last restart and stoppedAt;
// zero when it never restarted.
func ranFor(a *v1alpha1.Actor, stoppedAt time.Time) time.Duration {
	if a.Status.LastRestartTime == nil {
		return 0
	}
	return stoppedAt.Sub(a.Status.LastRestartTime.Time)
}

func chainSummary(a *v1alpha1.Actor) string {
	if a.Status.Chain == nil || a.Status.Chain.Head == "" {
		return "no chain head"
	}
	return fmt.Sprintf("chain head %s, length %d", v1alpha1.ShortHead(a.Status.Chain.Head), a.Status.Chain.Length)
}
