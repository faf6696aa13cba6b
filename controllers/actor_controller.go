package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/eventsink"
	"github.com/troupe-dev/troupe/internal/placement"
	"github.com/troupe-dev/troupe/internal/textutil"
)

// Defaults of ActorReconciler's knobs.
const (
	// DefaultFlushTimeout bounds how long a deleted Actor waits for its
	// live host to report Stopped before it is released anyway.
	DefaultFlushTimeout = 5 * time.Minute
	// DefaultFullRetry is how often an actor that found every fitting
	// host full looks again (freed capacity sends no event).
	DefaultFullRetry = 30 * time.Second
	// DefaultNoHostGrace is how long an actor waits for a host before the
	// wait is reported with a Warning Event: a host pod that is replaced
	// (a rolling update, a deleted pod) comes back within seconds, and its
	// actors should not each raise an alarm meanwhile.
	DefaultNoHostGrace = 30 * time.Second
	// DefaultWorkers is how many Actors are reconciled at once.
	DefaultWorkers = 4
	// ControllerName names the controller and the events' reporter.
	ControllerName = "troupe-manager"
	// staleRetry is how soon an Actor read from a cache that had not yet
	// seen the reconciler's last write is looked at again.
	staleRetry = 50 * time.Millisecond
)

// The manager's RBAC (config/rbac/role.yaml, `make manifests`): Actors are
// read from the cache and only their labels and finalizers patched, status
// updated (no actors/finalizers: that subresource guards ownerReferences'
// blockOwnerDeletion, which the manager never sets); host Leases are read in the host namespace only (the Role's
// namespace "system" becomes the deployment's namespace, as in
// leader_election_role.yaml); Nodes are read for their labels and taints.
//
// +kubebuilder:rbac:groups=theater.troupe.dev,resources=actors,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=theater.troupe.dev,resources=actors/status,verbs=update
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch,namespace=system
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// ActorReconciler places Actors on host pods and follows their life: see
// docs/operator.md. Create it with its exported fields set and give it to
// NewManager (or, in a manager of one's own, call SetupWithManager).
type ActorReconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client client.Client
	// Recorder records Events on Actors.
	Recorder events.EventRecorder
	// HostNamespace is where host pods and their Leases live.
	HostNamespace string
	// Backoff spaces restarts; zero means DefaultBackoff.
	Backoff Backoff
	// FlushTimeout: zero means DefaultFlushTimeout.
	FlushTimeout time.Duration
	// FullRetry: zero means DefaultFullRetry.
	FullRetry time.Duration
	// NoHostGrace: zero means DefaultNoHostGrace; negative warns at once.
	NoHostGrace time.Duration
	// Workers is how many Actors are reconciled at once; zero means
	// DefaultWorkers.
	Workers int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Archive, when the installation has one, makes a deleted Actor's
	// archive go after its retention (retention.go); nil: no archive.
	Archive *ArchiveSettings

	sweeper *archiveSweeper

	ledger  *ledger
	monitor *hostMonitor
	// superseded holds, per Actor, the resourceVersions its last write
	// moved past: a cached Actor still at one of them is behind the API
	// server, and acting on it would only end in a conflict.
	supersededMu sync.Mutex
	superseded   map[types.NamespacedName][]string
	// noHost holds the Actors waiting for a host: since when, and whether
	// the wait was reported (once per wait).
	noHostMu sync.Mutex
	noHost   map[types.NamespacedName]*noHostWait
}

type noHostWait struct {
	since time.Time
	// movedFrom and moveReason: the host the wait began by losing, if any.
	movedFrom, moveReason string
	warned                bool
}

// SetupWithManager registers the reconciler, its index and its watches.
func (r *ActorReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if r.HostNamespace == "" {
		return errors.New("actor reconciler: HostNamespace is empty")
	}
	if r.Client == nil {
		r.Client = mgr.GetClient()
	}
	// Every write names the manager as its field manager, so managedFields
	// show which fields it owns (PROTOCOL.md#ownership).
	r.Client = client.WithFieldOwner(r.Client, v1alpha1.ManagerFieldOwner)
	if r.Recorder == nil {
		// Events through a client of their own, rate-limited: a burst's
		// Placed Events follow its placements instead of competing with
		// them on the API server (the manager's client has no limit).
		sink, err := eventsink.New(mgr.GetConfig(), eventsink.Options{})
		if err != nil {
			return err
		}
		if err := mgr.Add(sink); err != nil {
			return fmt.Errorf("adding the Event sink: %w", err)
		}
		r.Recorder = sink.Recorder(mgr.GetScheme(), ControllerName)
	}
	if r.Backoff == (Backoff{}) {
		r.Backoff = DefaultBackoff
	}
	if r.FlushTimeout == 0 {
		r.FlushTimeout = DefaultFlushTimeout
	}
	if r.FullRetry == 0 {
		r.FullRetry = DefaultFullRetry
	}
	if r.NoHostGrace == 0 {
		r.NoHostGrace = DefaultNoHostGrace
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Workers <= 0 {
		r.Workers = DefaultWorkers
	}
	if r.Archive != nil {
		if r.Archive.Store == nil || r.Archive.Retention < 0 {
			return errors.New("actor reconciler: the archive needs a store and a retention of zero or more")
		}
		r.sweeper = newArchiveSweeper(*r.Archive, r.Now)
		if err := mgr.Add(r.sweeper); err != nil {
			return fmt.Errorf("adding the archive's retention: %w", err)
		}
		orphans, err := newOrphanCollector(*r.Archive, r.Now)
		if err != nil {
			return fmt.Errorf("adding the archive's orphan collection: %w", err)
		}
		if err := mgr.Add(orphans); err != nil {
			return fmt.Errorf("adding the archive's orphan collection: %w", err)
		}
	}
	r.ledger = newLedger()
	r.monitor = newHostMonitor(r.Now)
	r.superseded = map[types.NamespacedName][]string{}

	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.Actor{}, hostPodIndex, indexHostPod); err != nil {
		return fmt.Errorf("indexing actors by %s: %w", hostPodIndex, err)
	}
	inHostNamespace := predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetNamespace() == r.HostNamespace && hostLeaseSelector().Matches(labelsOf(o))
	})
	expirySource := source.Func(func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		go r.monitor.run(ctx, func(host string) {
			log := ctrl.LoggerFrom(ctx).WithValues("host", host)
			log.V(1).Info("host lease expired; waking its actors")
			enqueueActors(ctx, r.Client, host, q)
		})
		return nil
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("actor").
		For(&v1alpha1.Actor{}, builder.WithPredicates(actorChanged())).
		Watches(&coordinationv1.Lease{}, r.leaseHandler(), builder.WithPredicates(inHostNamespace)).
		Watches(&corev1.Node{}, r.nodeHandler()).
		WatchesRawSource(expirySource).
		// Placements reserve their host in the ledger atomically, so
		// workers may run in parallel (one Actor is never reconciled by
		// two at once); they overlap the API round trips of a burst.
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Workers}).
		Complete(r)
}

// actorChanged lets through the Actor updates the reconciler acts on: spec
// (generation), deletion, labels and finalizers, and the status fields that
// drive restarts and deletion (phase, Ready, the assignment). Chain-head
// updates, the most frequent writes of a host, are left out.
func actorChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*v1alpha1.Actor)
			n, ok2 := e.ObjectNew.(*v1alpha1.Actor)
			if !ok1 || !ok2 {
				return true
			}
			if o.Generation != n.Generation ||
				!o.DeletionTimestamp.Equal(n.DeletionTimestamp) ||
				!maps.Equal(o.Labels, n.Labels) ||
				!slices.Equal(o.Finalizers, n.Finalizers) ||
				o.Status.Phase != n.Status.Phase ||
				o.Status.HostPod != n.Status.HostPod ||
				o.Status.Epoch != n.Status.Epoch {
				return true
			}
			or, nr := meta.FindStatusCondition(o.Status.Conditions, v1alpha1.ConditionReady), meta.FindStatusCondition(n.Status.Conditions, v1alpha1.ConditionReady)
			if (or == nil) != (nr == nil) {
				return true
			}
			return or != nil && (or.Status != nr.Status || or.Reason != nr.Reason || or.ObservedGeneration != nr.ObservedGeneration)
		},
	}
}

// scope is one reconcile's working state: the Actor as fetched, the Actor
// being changed, and what to do once the changes are written.
type scope struct {
	key    types.NamespacedName
	orig   *v1alpha1.Actor
	actor  *v1alpha1.Actor
	now    time.Time
	log    logr.Logger
	hosts  []placement.Host // nil until loaded
	after  time.Duration    // requeue after, 0 for none
	events []pendingEvent

	// Set by reconcileHostHealth when it took the actor off its host;
	// refused names the host that refused to start it, and what it
	// lacked, for the placement that follows.
	movedFrom, moveReason string
	refused               map[string]placement.Unfit
	// Set by reconcilePlacement when this reconcile reports the wait for a
	// host: the report is the wait's only one once the write succeeds.
	reportsWait bool
	// Set by reconcileRestart when the restart needs a new host.
	restarting bool
	// Set by reconcilePlacement: the ledger holds the new assignment
	// already; unreserve is the entry to restore if it isn't written.
	reserved  bool
	unreserve string
}

type pendingEvent struct {
	eventType, reason, action, note string
}

func (s *scope) requeueAfter(d time.Duration) {
	if d <= 0 {
		d = time.Millisecond
	}
	if s.after == 0 || d < s.after {
		s.after = d
	}
}

// event queues an Event, recorded once the changes are written. The note is
// cut to what the API server accepts as the last step, whatever it wraps;
// invalid UTF-8 (from a host's report) becomes U+FFFD first, as JSON would
// make it anyway, so the cut counts the bytes the API server will count.
func (s *scope) event(eventType, reason, action, format string, args ...any) {
	note := strings.ToValidUTF8(fmt.Sprintf(format, args...), "\uFFFD")
	note = textutil.Truncate(note, v1alpha1.MaxEventNoteBytes)
	s.events = append(s.events, pendingEvent{eventType, reason, action, note})
}

// host returns the host named name, if it has a Lease.
func (s *scope) host(name string) (placement.Host, bool) {
	for _, h := range s.hosts {
		if h.Name == name {
			return h, true
		}
	}
	return placement.Host{}, false
}

// phase is one named step of a reconcile. It changes s.actor; stop ends the
// reconcile early (the changes so far are still written).
type phase struct {
	name string
	run  func(ctx context.Context, s *scope) (stop bool, err error)
}

func (r *ActorReconciler) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// Reconcile runs the phases of one Actor and writes what they changed:
// labels and finalizers first (merge patch, optimistic lock), then status
// (update with the fetched resourceVersion). A conflict returns an error
// and controller-runtime retries with a fresh read.
func (r *ActorReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	log := ctrl.LoggerFrom(ctx)
	actor := &v1alpha1.Actor{}
	if err := r.Client.Get(ctx, req.NamespacedName, actor); err != nil {
		if apierrors.IsNotFound(err) {
			r.ledger.forget(req.NamespacedName)
			r.setSuperseded(req.NamespacedName, nil)
			r.endWaitForHost(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("getting actor %s: %w", req.NamespacedName, err)
	}
	if r.stale(req.NamespacedName, actor.ResourceVersion) {
		// Our own write's event is on its way; look again shortly rather
		// than drop the request, which may have come for another reason.
		return ctrl.Result{RequeueAfter: staleRetry}, nil
	}
	if err := r.seedLedger(ctx); err != nil {
		return ctrl.Result{}, err
	}
	s := &scope{key: req.NamespacedName, orig: actor.DeepCopy(), actor: actor, now: r.now(), log: log}
	defer func() {
		if err := r.write(ctx, s); err != nil {
			if s.reserved {
				r.ledger.set(s.key, s.unreserve)
			}
			if s.reportsWait {
				// Its Event went with the failed write: the next
				// reconcile reports the wait.
				r.unreportWait(s.key)
			}
			retErr = errors.Join(retErr, err)
		}
		if retErr == nil {
			res = ctrl.Result{RequeueAfter: s.after}
		}
	}()

	phases := []phase{
		{"validate", r.reconcileValidate},
		{"identity", r.reconcileIdentity},
		{"suspend", r.reconcileSuspend},
		{"hostHealth", r.reconcileHostHealth},
		{"restart", r.reconcileRestart},
		{"placement", r.reconcilePlacement},
	}
	if !actor.DeletionTimestamp.IsZero() {
		phases = []phase{{"delete", r.reconcileDelete}}
	}
	for _, p := range phases {
		stop, err := p.run(ctx, s)
		if err != nil {
			return ctrl.Result{}, fmt.Errorf("actor %s: %s: %w", s.key, p.name, err)
		}
		if stop {
			break
		}
	}
	if actor.DeletionTimestamp.IsZero() {
		actor.Status.ObservedGeneration = actor.Generation
	}
	return ctrl.Result{}, nil
}

// seedLedger fills the ledger from the cache the first time.
func (r *ActorReconciler) seedLedger(ctx context.Context) error {
	if !r.ledger.needsSeed() {
		return nil
	}
	var list v1alpha1.ActorList
	if err := r.Client.List(ctx, &list); err != nil {
		return fmt.Errorf("listing actors to count host loads: %w", err)
	}
	assigned := make(map[types.NamespacedName]string, len(list.Items))
	for i := range list.Items {
		assigned[client.ObjectKeyFromObject(&list.Items[i])] = list.Items[i].Status.HostPod
	}
	r.ledger.seed(assigned)
	return nil
}

// loadHosts reads the hosts once per reconcile.
func (r *ActorReconciler) loadHosts(ctx context.Context, s *scope) error {
	if s.hosts != nil {
		return nil
	}
	hosts, err := hostLister{client: r.Client, namespace: r.HostNamespace}.list(ctx, r.ledger.loads())
	if err != nil {
		return err
	}
	s.hosts = hosts
	return nil
}

// write stores what the phases changed, then records the ledger and the
// Events, which describe only changes that were stored.
func (r *ActorReconciler) write(ctx context.Context, s *scope) error {
	a := s.actor
	if a.DeletionTimestamp.IsZero() {
		syncAssignedLabel(a)
	}
	var passed []string
	if !maps.Equal(a.Labels, s.orig.Labels) || !slices.Equal(a.Finalizers, s.orig.Finalizers) {
		m := s.orig.DeepCopy()
		m.Labels, m.Finalizers = a.Labels, a.Finalizers
		// The lock makes the patch fail if the Actor changed since it was
		// read, so the status update below, made with the patch's
		// resourceVersion, can't overwrite a host's write either.
		if err := r.Client.Patch(ctx, m, client.MergeFromWithOptions(s.orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("patching labels and finalizers of actor %s: %w", s.key, err)
		}
		passed = append(passed, s.orig.ResourceVersion)
		a.ResourceVersion = m.ResourceVersion
	}
	released := !a.DeletionTimestamp.IsZero() && !slices.Contains(a.Finalizers, v1alpha1.ChainFlushFinalizer)
	if released {
		r.ledger.forget(s.key)
		r.setSuperseded(s.key, nil)
		r.endWaitForHost(s.key)
	} else {
		if !equality.Semantic.DeepEqual(s.orig.Status, a.Status) {
			before := a.ResourceVersion
			if err := r.Client.Status().Update(ctx, a); err != nil {
				return fmt.Errorf("updating status of actor %s: %w", s.key, err)
			}
			passed = append(passed, before)
		}
		r.ledger.set(s.key, a.Status.HostPod)
		if len(passed) > 0 {
			r.setSuperseded(s.key, passed)
		}
	}
	for _, e := range s.events {
		r.Recorder.Eventf(a, nil, e.eventType, e.reason, e.action, "%s", e.note)
	}
	return nil
}

// syncAssignedLabel makes the assigned-host label name status.hostPod, so
// that the host's label selector sees exactly its actors.
func syncAssignedLabel(a *v1alpha1.Actor) {
	if a.Status.HostPod == "" {
		if _, ok := a.Labels[v1alpha1.AssignedHostLabel]; ok {
			a.Labels = maps.Clone(a.Labels)
			delete(a.Labels, v1alpha1.AssignedHostLabel)
		}
		return
	}
	if a.Labels[v1alpha1.AssignedHostLabel] != a.Status.HostPod {
		a.Labels = maps.Clone(a.Labels)
		if a.Labels == nil {
			a.Labels = map[string]string{}
		}
		a.Labels[v1alpha1.AssignedHostLabel] = a.Status.HostPod
	}
}

func (r *ActorReconciler) setSuperseded(k types.NamespacedName, rvs []string) {
	r.supersededMu.Lock()
	defer r.supersededMu.Unlock()
	if len(rvs) == 0 {
		delete(r.superseded, k)
		return
	}
	r.superseded[k] = rvs
}

// stale reports whether the cached Actor k at resourceVersion rv predates
// the reconciler's last write of it; a newer one ends the watch.
func (r *ActorReconciler) stale(k types.NamespacedName, rv string) bool {
	r.supersededMu.Lock()
	defer r.supersededMu.Unlock()
	rvs, ok := r.superseded[k]
	if !ok {
		return false
	}
	if slices.Contains(rvs, rv) {
		return true
	}
	delete(r.superseded, k)
	return false
}

func hostLeaseSelector() labels.Selector {
	return labels.SelectorFromSet(labels.Set{v1alpha1.HostLeaseLabel: v1alpha1.HostLeaseLabelValue})
}

func labelsOf(o client.Object) labels.Set { return labels.Set(o.GetLabels()) }
