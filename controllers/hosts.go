package controllers

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/placement"
	"github.com/troupe-dev/troupe/internal/textutil"
)

// hostPodIndex indexes Actors by status.hostPod; actors waiting for a host
// are indexed under unscheduledKey, so that a new host or a relabelled node
// wakes exactly those.
const (
	hostPodIndex   = "status.hostPod"
	unscheduledKey = "\x00unscheduled"
)

func indexHostPod(o client.Object) []string {
	a, ok := o.(*v1alpha1.Actor)
	if !ok {
		return nil
	}
	if a.Status.HostPod != "" {
		return []string{a.Status.HostPod}
	}
	if a.Spec.Suspend || a.DeletionTimestamp != nil {
		return nil
	}
	return []string{unscheduledKey}
}

// hostLister reads host pods from the cache: their Leases in the host
// namespace and their Nodes.
type hostLister struct {
	client    client.Reader
	namespace string
}

func (h hostLister) list(ctx context.Context, loads map[string]int) ([]placement.Host, error) {
	var leases coordinationv1.LeaseList
	if err := h.client.List(ctx, &leases, client.InNamespace(h.namespace),
		client.MatchingLabels{v1alpha1.HostLeaseLabel: v1alpha1.HostLeaseLabelValue}); err != nil {
		return nil, fmt.Errorf("listing host leases in namespace %s: %w", h.namespace, err)
	}
	nodes := map[string]*corev1.Node{}
	for i := range leases.Items {
		name := leases.Items[i].Annotations[v1alpha1.NodeAnnotation]
		if _, seen := nodes[name]; seen || name == "" {
			continue
		}
		var n corev1.Node
		switch err := h.client.Get(ctx, types.NamespacedName{Name: name}, &n); {
		case err == nil:
			nodes[name] = &n
		case apierrors.IsNotFound(err):
			nodes[name] = nil
		default:
			return nil, fmt.Errorf("getting node %s: %w", name, err)
		}
	}
	hosts := make([]placement.Host, 0, len(leases.Items))
	for i := range leases.Items {
		hosts = append(hosts, placement.HostFromLease(&leases.Items[i], nodes, loads))
	}
	return hosts, nil
}

// enqueueActors adds to q the actors the index maps key to.
func enqueueActors(ctx context.Context, c client.Reader, key string, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	var list v1alpha1.ActorList
	if err := c.List(ctx, &list, client.MatchingFields{hostPodIndex: key}); err != nil {
		log.FromContext(ctx).Error(err, "listing actors to wake", "hostPod", key)
		return
	}
	for i := range list.Items {
		q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
}

// hostMonitor wakes the actors of a host when its lease runs out. A dead
// host sends no event, so without it nothing would notice; with one timer
// for all hosts, a renewal costs no reconcile of the host's actors.
type hostMonitor struct {
	mu     sync.Mutex
	expiry map[string]time.Time // host -> lease expiry, while live
	wake   chan struct{}
	now    func() time.Time
}

func newHostMonitor(now func() time.Time) *hostMonitor {
	return &hostMonitor{expiry: map[string]time.Time{}, wake: make(chan struct{}, 1), now: now}
}

// observe records host's lease expiry; an expiry already past fires at once.
func (m *hostMonitor) observe(host string, expiry time.Time) {
	m.mu.Lock()
	old, ok := m.expiry[host]
	m.expiry[host] = expiry
	m.mu.Unlock()
	if !ok || expiry.Before(old) || !m.now().Before(expiry) {
		m.poke()
	}
}

// forget drops host, whose Lease was deleted.
func (m *hostMonitor) forget(host string) {
	m.mu.Lock()
	delete(m.expiry, host)
	m.mu.Unlock()
}

func (m *hostMonitor) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// due removes and returns the hosts whose lease ran out by now, and the
// next expiry of the others (zero when none).
func (m *hostMonitor) due(now time.Time) (hosts []string, next time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for h, e := range m.expiry {
		if !now.Before(e) {
			hosts = append(hosts, h)
			delete(m.expiry, h)
		} else if next.IsZero() || e.Before(next) {
			next = e
		}
	}
	slices.Sort(hosts)
	return hosts, next
}

// run calls expired with every host whose lease runs out, until ctx ends.
func (m *hostMonitor) run(ctx context.Context, expired func(host string)) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := m.now()
		hosts, next := m.due(now)
		for _, h := range hosts {
			expired(h)
		}
		wait := time.Hour
		if !next.IsZero() {
			// A little past the expiry, so the reconciler, comparing with
			// its own clock reading, sees the lease as expired.
			wait = next.Sub(now) + 10*time.Millisecond
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-m.wake:
		}
	}
}

// reportProtocol records, on a host Lease that declares a protocol version
// this manager does not speak, a Warning Event saying so: placement skips
// such a host (and says why in the NoHostAvailable message of actors that
// find no other), and this is where an operator looking at the host sees it.
func (r *ActorReconciler) reportProtocol(ctx context.Context, l *coordinationv1.Lease) {
	h := placement.Host{Name: l.Name, Protocol: l.Annotations[v1alpha1.ProtocolVersionAnnotation]}
	problem := placement.ProtocolProblem(&h)
	if problem == "" {
		return
	}
	log.FromContext(ctx).Info("a host speaks an unknown protocol version; placing no actor on it",
		"host", l.Name, "protocolVersion", h.Protocol, "known", placement.KnownProtocols())
	note := textutil.Truncate(problem+": it gets no actors until a manager that knows its version runs", v1alpha1.MaxEventNoteBytes)
	r.Recorder.Eventf(l, nil, corev1.EventTypeWarning, v1alpha1.EventUnknownProtocol, "Place", "%s", note)
}

// leaseHandler maps host Lease events to the actors they concern: a new or
// revived host, or a change of its node, capacity or protocol version, may
// take actors waiting for one; a deleted host's actors move at once, and
// so do those of a namespace the host stops serving.
// Renewals only move the host's expiry in the monitor. A host whose
// protocol version this manager does not know is reported once per Lease
// and version (reportProtocol).
func (r *ActorReconciler) leaseHandler() handler.TypedEventHandler[client.Object, reconcile.Request] {
	return handler.TypedFuncs[client.Object, reconcile.Request]{
		CreateFunc: func(ctx context.Context, e event.TypedCreateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			l, ok := e.Object.(*coordinationv1.Lease)
			if !ok {
				return
			}
			r.reportProtocol(ctx, l)
			expiry := placement.LeaseExpiry(l)
			r.monitor.observe(l.Name, expiry)
			if r.now().Before(expiry) {
				enqueueActors(ctx, r.Client, unscheduledKey, q)
			}
		},
		UpdateFunc: func(ctx context.Context, e event.TypedUpdateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			old, ok1 := e.ObjectOld.(*coordinationv1.Lease)
			l, ok2 := e.ObjectNew.(*coordinationv1.Lease)
			if !ok1 || !ok2 {
				return
			}
			if old.Annotations[v1alpha1.ProtocolVersionAnnotation] != l.Annotations[v1alpha1.ProtocolVersionAnnotation] {
				r.reportProtocol(ctx, l)
			}
			expiry := placement.LeaseExpiry(l)
			r.monitor.observe(l.Name, expiry)
			now := r.now()
			revived := !now.Before(placement.LeaseExpiry(old)) && now.Before(expiry)
			if revived || (now.Before(expiry) && r.mayTakeMore(old, l)) {
				enqueueActors(ctx, r.Client, unscheduledKey, q)
			}
			if old.Annotations[v1alpha1.NamespacesAnnotation] != l.Annotations[v1alpha1.NamespacesAnnotation] {
				// The host may have stopped serving the namespace of an
				// actor it runs: reconcileHostHealth moves that actor off.
				enqueueActors(ctx, r.Client, l.Name, q)
			}
		},
		DeleteFunc: func(ctx context.Context, e event.TypedDeleteEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			name := e.Object.GetName()
			r.monitor.forget(name)
			enqueueActors(ctx, r.Client, name, q)
		},
	}
}

// memoryFigures are the annotations a host rewrites at every renewal as its
// actors' memory moves; a change of them alone wakes the waiting actors
// only when it makes room for more (mayTakeMore).
var memoryFigures = []string{v1alpha1.MemoryUsedAnnotation, v1alpha1.MemoryActorsAnnotation, v1alpha1.MemoryPerActorAnnotation}

// mayTakeMore reports whether a host's Lease changed from old to l in a
// way that may let it take an actor waiting for one: any change of what
// it declares but its memory figures, or figures that now fit more actors
// than before at the load the ledger gives it. The figures change with
// nearly every renewal; waking every waiting actor each time would cost a
// reconcile (and a status write, the message quoting them) per actor every
// few seconds.
func (r *ActorReconciler) mayTakeMore(old, l *coordinationv1.Lease) bool {
	strip := func(a map[string]string) map[string]string {
		a = maps.Clone(a)
		for _, k := range memoryFigures {
			delete(a, k)
		}
		return a
	}
	if !maps.Equal(strip(old.Annotations), strip(l.Annotations)) {
		return true
	}
	load := r.ledger.loads()[l.Name]
	return fitting(placement.MemoryFromLease(l), load) > fitting(placement.MemoryFromLease(old), load)
}

// fitting is how many more actors m has memory for at load.
func fitting(m placement.Memory, load int) uint64 {
	if m.Capacity == 0 || m.PerActor == 0 {
		return math.MaxUint64
	}
	return m.Free(load) / m.PerActor
}

// nodeHandler wakes the actors waiting for a host when a node's labels or
// taints change: a host may now fit them. Assigned actors stay where they
// are, as a Pod's nodeSelector is only checked at scheduling.
func (r *ActorReconciler) nodeHandler() handler.TypedEventHandler[client.Object, reconcile.Request] {
	wake := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		enqueueActors(ctx, r.Client, unscheduledKey, q)
	}
	return handler.TypedFuncs[client.Object, reconcile.Request]{
		CreateFunc: func(ctx context.Context, _ event.TypedCreateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			wake(ctx, q)
		},
		UpdateFunc: func(ctx context.Context, e event.TypedUpdateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			old, ok1 := e.ObjectOld.(*corev1.Node)
			n, ok2 := e.ObjectNew.(*corev1.Node)
			if ok1 && ok2 && maps.Equal(old.Labels, n.Labels) && slices.EqualFunc(old.Spec.Taints, n.Spec.Taints, taintEqual) {
				return
			}
			wake(ctx, q)
		},
	}
}

func taintEqual(a, b corev1.Taint) bool {
	return a.Key == b.Key && a.Value == b.Value && a.Effect == b.Effect
}
