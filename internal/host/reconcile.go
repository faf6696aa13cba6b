package host

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/chain"
)

// runState is where a run is.
type runState int

const (
	stateStarting runState = iota
	stateRunning
	stateEnded // the actor stopped by itself (shutdown, failure) or never could start
)

// run is one run of one actor on this host: an (epoch, generation) of it.
type run struct {
	key        types.NamespacedName
	epoch      int64
	generation int64
	actorID    string
	dir        string

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when the runner goroutine returns

	// flushed is set once the Stopped status of a deleted or suspended
	// Actor was reported (guarded by Host.mu).
	flushed bool

	mu         sync.Mutex
	state      runState
	actor      *actorhost.Actor
	comp       *actorhost.Component // once compiled: its memory estimate
	stopReason string
	lastLength uint64 // chain length last seen by the head poller
	lastTicks  uint64 // ok tick calls counted in the calls metric
	arch       runArchive

	// recordErr is why the run record in dir could not be read; the run
	// then fails and never overwrites it.
	recordErr error
}

func (r *run) isRunning() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state == stateRunning
}

func (r *run) setState(s runState) {
	r.mu.Lock()
	r.state = s
	r.mu.Unlock()
}

// component is the run's compiled component, nil before it compiled.
func (r *run) component() *actorhost.Component {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.comp
}

func (r *run) getActor() *actorhost.Actor {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.actor
}

// assignedHere reports whether a's current assignment names this host. A
// suspended actor still assigned here is not run, but it is this host's to
// stop and to report Stopped with its final chain head: the controller
// keeps the assignment until then.
func (h *Host) assignedHere(a *v1alpha1.Actor) bool {
	return a.Labels[v1alpha1.AssignedHostLabel] == h.cfg.PodName &&
		a.Status.HostPod == h.cfg.PodName
}

// stopCause says why an assigned actor must not run: it is being deleted
// or suspended; "" when it may run.
func stopCause(a *v1alpha1.Actor) string {
	switch {
	case a.DeletionTimestamp != nil:
		return "the Actor was deleted"
	case a.Spec.Suspend:
		return "the Actor was suspended"
	}
	return ""
}

// reconcile makes what runs here match the Actor's assignment: it starts
// an assigned actor, restarts it on a new epoch or generation, stops it when
// the assignment names another host (or none), and on deletion or suspend
// stops it, flushes its chain and reports Ready=False reason Stopped with
// the final head.
func (h *Host) reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	key := req.NamespacedName
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		return reconcile.Result{}, nil
	}
	r := h.runs[key]
	h.mu.Unlock()

	var a v1alpha1.Actor
	err := h.client.Get(ctx, key, &a)
	if err != nil && !apierrors.IsNotFound(err) {
		return reconcile.Result{}, err
	}
	found := err == nil
	mine := found && h.assignedHere(&a)
	// Deleted or suspended: stop and report the final head, once.
	cause := ""
	if found {
		cause = stopCause(&a)
	}

	if r != nil {
		switch {
		case !mine:
			why := "the Actor was deleted"
			if found {
				why = fmt.Sprintf("the Actor is now assigned to %q (epoch %d)", a.Status.HostPod, a.Status.Epoch)
			}
			h.stopRun(r, why)
			h.removeRun(key, r)
			h.pub.forget(key)
			h.msgMetrics.forget(key)
			h.mu.Lock()
			delete(h.resolved, key)
			h.mu.Unlock()
			return reconcile.Result{}, nil
		case cause != "" && r.epoch == a.Status.Epoch:
			// Before any restart for a new generation: suspending changes
			// the generation, and must stop the run, not restart it.
			h.mu.Lock()
			flushed := r.flushed
			r.flushed = true
			h.mu.Unlock()
			if !flushed {
				h.stopRun(r, cause)
				h.reportStopped(&a, r, cause)
			}
			return reconcile.Result{}, nil
		case r.epoch != a.Status.Epoch || r.generation != a.Generation || r.actorID != a.Status.ActorID:
			h.stopRun(r, fmt.Sprintf("restarting for epoch %d, generation %d", a.Status.Epoch, a.Generation))
			h.removeRun(key, r)
		default:
			return reconcile.Result{}, nil
		}
	}
	if !mine || a.Status.ActorID == "" {
		// Not (yet) ours: the controller gives the id with the assignment.
		return reconcile.Result{}, nil
	}
	r = h.newRun(&a)
	if cause != "" {
		// Deleted or suspended before it ran here (or before this host
		// restarted): nothing runs, the chain on disk is final.
		r.state, r.flushed = stateEnded, true
		close(r.done)
		h.addRun(r)
		h.reportStopped(&a, r, cause)
		return reconcile.Result{}, nil
	}
	rec, ok, err := actordir.ReadRunRecord(r.dir)
	// A record this host cannot read (damaged, or of a newer Troupe) fails
	// the run with its error, and is left for the operator to look at.
	r.recordErr = err
	if ok && rec.Epoch == a.Status.Epoch && rec.Generation == a.Generation {
		// This epoch already ended here (the host restarted since): the
		// controller restarts it with a new epoch, if its policy says so.
		r.state = stateEnded
		close(r.done)
		h.addRun(r)
		return reconcile.Result{}, nil
	}
	h.addRun(r)
	go h.runActor(r, a.DeepCopy())
	return reconcile.Result{}, nil
}

func (h *Host) newRun(a *v1alpha1.Actor) *run {
	key := types.NamespacedName{Namespace: a.Namespace, Name: a.Name}
	ctx, cancel := context.WithCancel(context.Background())
	return &run{key: key, epoch: a.Status.Epoch, generation: a.Generation, actorID: a.Status.ActorID,
		dir: actordir.Path(h.cfg.DataDir, a.Namespace, a.Name, a.Status.ActorID), ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

func (h *Host) addRun(r *run) {
	h.mu.Lock()
	h.runs[r.key] = r
	h.mu.Unlock()
}

func (h *Host) removeRun(key types.NamespacedName, r *run) {
	h.mu.Lock()
	if h.runs[key] == r {
		delete(h.runs, key)
	}
	h.mu.Unlock()
}

// stopRun stops r's actor (waiting StopGrace for a call in progress) and
// waits for its runner to finish; the chain is flushed and closed then.
func (h *Host) stopRun(r *run, reason string) {
	r.mu.Lock()
	if r.stopReason == "" {
		r.stopReason = reason
	}
	r.mu.Unlock()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(h.cfg.StopGrace + h.archiveStopWait() + 30*time.Second):
		h.log.Error(nil, "an actor's runner did not stop in time", "actor", r.key, "reason", reason)
	}
}

// reportStopped reports the final state of a deleted or suspended actor
// (cause says which): Ready=False reason Stopped, with the head of its
// chain on this node.
func (h *Host) reportStopped(a *v1alpha1.Actor, r *run, cause string) {
	head, length, ok := h.finalHead(r)
	msg := cause + ": its host stopped it"
	if ok {
		msg += fmt.Sprintf(" and flushed its chain (%d events, head %s)", length, head.Short())
	}
	h.pub.update(r.key, r.epoch, true, func(v *view) {
		v.generation = a.Generation
		v.ready = &readyCond{status: metav1.ConditionFalse, reason: v1alpha1.ReasonStopped, message: msg}
		if ok {
			v.hasChain, v.head, v.length = true, head.String(), length
		}
	})
	h.event(a, corev1.EventTypeNormal, v1alpha1.ReasonStopped, "Stop", msg)
}

// finalHead is the head of r's chain: the stopped actor's, or what is on
// disk when no actor ran in this process.
func (h *Host) finalHead(r *run) (chain.Hash, uint64, bool) {
	if a := r.getActor(); a != nil {
		head, length := a.Head()
		return head, length, length > 0
	}
	return localHead(r.dir)
}
