package controllers

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/envtestutil"
)

// Time limits of the envtest suites. Things the controller does on its own
// come within prompt; a lease runs out after testLease.
const (
	testLease = 2 * time.Second
	prompt    = 20 * time.Second
	poll      = 25 * time.Millisecond
)

// harness is one manager running the Actor reconciler against a shared
// control plane, confined to a namespace of its own: its Actors and its
// host Leases live there, so suites don't see each other's hosts.
type harness struct {
	t   testing.TB
	g   gomega.Gomega
	env *envtestutil.Env
	c   client.Client // straight to the API server, as a user or a host
	ns  string
	r   *ActorReconciler
	ctx context.Context
	// emitted is every Event the reconciler recorded, as it recorded it:
	// client-go folds repeats into series the API server shows late, so
	// counting "one Event per fact" needs the calls themselves.
	emitted *eventLog
}

type harnessOptions struct {
	// config is how the manager reaches the API server; env.Config if nil.
	config func(ns string) *rest.Config
	// tune changes the reconciler's knobs before it starts.
	tune func(*ActorReconciler)
	// leaderElection runs the manager with leader election in ns.
	leaderElection bool
	// before runs before the manager starts, with the namespace.
	before func(ns string)
}

// newHarness starts a manager built by NewManager, as cmd/manager's, in a
// namespace of its own.
func newHarness(t testing.TB, env *envtestutil.Env, opts harnessOptions) *harness {
	t.Helper()
	ns := env.Namespace(t)
	if opts.before != nil {
		opts.before(ns)
	}
	cfg := env.Config
	if opts.config != nil {
		cfg = opts.config(ns)
	}
	mo := env.ManagerOptions(ns)
	if opts.leaderElection {
		mo.LeaderElection = true
		mo.LeaderElectionID = "troupe-manager.theater.troupe.dev"
		mo.LeaderElectionNamespace = ns
		mo.LeaderElectionReleaseOnCancel = true
	}
	r := &ActorReconciler{
		HostNamespace: ns,
		Backoff:       Backoff{Base: time.Second, Max: 8 * time.Second, Reset: time.Minute},
		// Report a wait for a host at once; testNoHostGrace tests the grace.
		NoHostGrace: -1,
	}
	if opts.tune != nil {
		opts.tune(r)
	}
	mgr, err := NewManager(t.Context(), cfg, mo, r)
	if err != nil {
		t.Fatal(err)
	}
	emitted := &eventLog{next: r.Recorder}
	r.Recorder = emitted
	envtestutil.Run(t, "the manager", mgr, 30*time.Second)
	g := gomega.NewWithT(t)
	g.SetDefaultEventuallyTimeout(prompt)
	g.SetDefaultEventuallyPollingInterval(poll)
	return &harness{t: t, g: g, env: env, c: env.Client, ns: ns, r: r, ctx: t.Context(), emitted: emitted}
}

// eventLog passes Events on to the manager's recorder and remembers them.
type eventLog struct {
	next events.EventRecorder
	mu   sync.Mutex
	all  []emittedEvent
}

type emittedEvent struct {
	name, eventType, reason, note string
}

func (l *eventLog) Eventf(regarding, related runtime.Object, eventType, reason, action, note string, args ...any) {
	e := emittedEvent{eventType: eventType, reason: reason, note: fmt.Sprintf(note, args...)}
	if o, ok := regarding.(client.Object); ok {
		e.name = o.GetName()
	}
	l.mu.Lock()
	l.all = append(l.all, e)
	l.mu.Unlock()
	l.next.Eventf(regarding, related, eventType, reason, action, note, args...)
}

// notes are the notes of the Events with reason recorded about actor name.
func (l *eventLog) notes(name, reason string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.all {
		if e.name == name && e.reason == reason {
			out = append(out, e.note)
		}
	}
	return out
}

// node creates a ready Node (cluster-scoped, so named after the namespace).
func (h *harness) node(name string, labels map[string]string, taints ...corev1.Taint) string {
	h.t.Helper()
	return h.env.Node(h.t, h.ns+"-"+name, labels, taints...).Name
}

// fakeHost is a host pod as the controller sees it: a Lease it renews
// every quarter of its duration until it dies.
type fakeHost struct {
	h          *harness
	name, node string
	stopOnce   sync.Once
	stop, done chan struct{}
}

func (h *harness) host(name, node string, capacity int) *fakeHost {
	h.t.Helper()
	h.env.HostLease(h.t, h.ns, name, node, capacity, testLease)
	f := &fakeHost{h: h, name: name, node: node, stop: make(chan struct{}), done: make(chan struct{})}
	go f.renew()
	h.t.Cleanup(f.die)
	return f
}

func (f *fakeHost) renew() {
	defer close(f.done)
	tick := time.NewTicker(testLease / 4)
	defer tick.Stop()
	key := types.NamespacedName{Namespace: f.h.ns, Name: f.name}
	for {
		select {
		case <-f.stop:
			return
		case <-tick.C:
		}
		_ = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var l coordinationv1.Lease
			if err := f.h.c.Get(context.Background(), key, &l); err != nil {
				return err
			}
			now := metav1.NewMicroTime(time.Now())
			l.Spec.RenewTime = &now
			return f.h.c.Update(context.Background(), &l)
		})
	}
}

// die stops renewing: the lease runs out testLease later.
func (f *fakeHost) die() {
	f.stopOnce.Do(func() { close(f.stop) })
	<-f.done
}

// shutdown is a clean exit: the host deletes its Lease.
func (f *fakeHost) shutdown() {
	f.die()
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: f.name, Namespace: f.h.ns}}
	if err := f.h.c.Delete(context.Background(), l); err != nil {
		f.h.t.Fatalf("deleting lease %s: %v", f.name, err)
	}
}

func (h *harness) actor(name string, mutate ...func(*v1alpha1.Actor)) *v1alpha1.Actor {
	h.t.Helper()
	a := &v1alpha1.Actor{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Spec: v1alpha1.ActorSpec{
			Component: v1alpha1.ComponentSource{Image: "registry.example/actors/hello:v1"},
		},
	}
	for _, m := range mutate {
		m(a)
	}
	if err := h.c.Create(context.Background(), a); err != nil {
		h.t.Fatalf("creating actor %s: %v", name, err)
	}
	return a
}

func (h *harness) get(name string) (*v1alpha1.Actor, error) {
	var a v1alpha1.Actor
	err := h.c.Get(context.Background(), types.NamespacedName{Namespace: h.ns, Name: name}, &a)
	return &a, err
}

// update changes an Actor's spec or metadata as a user would.
func (h *harness) update(name string, mutate func(*v1alpha1.Actor)) {
	h.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		a, err := h.get(name)
		if err != nil {
			return err
		}
		mutate(a)
		return h.c.Update(context.Background(), a)
	})
	if err != nil {
		h.t.Fatalf("updating actor %s: %v", name, err)
	}
}

// placed waits until the actor is assigned (with the label the host
// selects by) and returns it.
func (h *harness) placed(name string) *v1alpha1.Actor {
	h.t.Helper()
	var a *v1alpha1.Actor
	h.g.Eventually(func(g gomega.Gomega) {
		var err error
		a, err = h.get(name)
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(a.Status.HostPod).NotTo(gomega.BeEmpty())
		g.Expect(a.Labels).To(gomega.HaveKeyWithValue(v1alpha1.AssignedHostLabel, a.Status.HostPod))
		g.Expect(a.Status.Phase).To(gomega.Equal(v1alpha1.PhaseScheduled))
	}).Should(gomega.Succeed(), "actor %s is never placed", name)
	return a
}

// report writes status as the host would: only while the actor's
// assignment names host with epoch, with optimistic concurrency.
func (h *harness) report(name, host string, epoch int64, mutate func(*v1alpha1.Actor)) {
	h.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		a, err := h.get(name)
		if err != nil {
			return err
		}
		if !a.AssignedTo(host, epoch) {
			return fmt.Errorf("actor %s is assigned to %s epoch %d, not %s epoch %d", name, a.Status.HostPod, a.Status.Epoch, host, epoch)
		}
		mutate(a)
		return h.c.Status().Update(context.Background(), a)
	})
	if err != nil {
		h.t.Fatalf("reporting status of %s as host %s: %v", name, host, err)
	}
}

const testHead = "3f8a1c2b4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8"

// Host reports.
func running(a *v1alpha1.Actor) {
	a.Status.Phase = v1alpha1.PhaseRunning
	a.Status.LastError = "" // once it runs, the last failure is over
	setHostReady(a, metav1.ConditionTrue, v1alpha1.ReasonRunning, "init returned")
	now := metav1.Now()
	a.Status.Chain = &v1alpha1.ChainStatus{Head: testHead, HeadShort: v1alpha1.ShortHead(testHead), Length: 3, UpdatedAt: &now}
}

func failed(reason, msg string) func(*v1alpha1.Actor) {
	return func(a *v1alpha1.Actor) {
		a.Status.Phase = v1alpha1.PhaseFailed
		a.Status.LastError = msg
		setHostReady(a, metav1.ConditionFalse, reason, msg)
	}
}

func succeeded(a *v1alpha1.Actor) {
	a.Status.Phase = v1alpha1.PhaseSucceeded
	setHostReady(a, metav1.ConditionFalse, v1alpha1.ReasonShutdown, "the actor called shutdown")
}

func stoppedAndFlushed(a *v1alpha1.Actor) {
	setHostReady(a, metav1.ConditionFalse, v1alpha1.ReasonStopped, "the Actor was deleted; chain flushed")
	now := metav1.Now()
	a.Status.Chain = &v1alpha1.ChainStatus{Head: testHead, HeadShort: v1alpha1.ShortHead(testHead), Length: 9, UpdatedAt: &now}
}

func setHostReady(a *v1alpha1.Actor, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&a.Status.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: status, Reason: reason, Message: msg, ObservedGeneration: a.Generation,
	})
}

// expectEvent waits for an Event about actor name with reason whose note
// contains each of notes.
func (h *harness) expectEvent(name, reason string, notes ...string) {
	h.t.Helper()
	h.g.Eventually(func() []string {
		var list eventsv1.EventList
		if err := h.c.List(context.Background(), &list, client.InNamespace(h.ns)); err != nil {
			return []string{err.Error()}
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Name != name {
				continue
			}
			seen = append(seen, e.Reason+": "+e.Note)
			if e.Reason != reason || e.ReportingController != ControllerName {
				continue
			}
			all := true
			for _, n := range notes {
				all = all && strings.Contains(e.Note, n)
			}
			if all {
				return nil
			}
		}
		return seen
	}).Should(gomega.BeEmpty(), "no %s event about %s mentioning %q; got the events listed", reason, name, notes)
}

func condition(a *v1alpha1.Actor, typ string) metav1.Condition {
	if c := meta.FindStatusCondition(a.Status.Conditions, typ); c != nil {
		return *c
	}
	return metav1.Condition{}
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

// settled waits until the manager's cache holds the Actor as the API server
// has it and a reconcile of it changes nothing more (run here, in the
// test's goroutine, besides the manager's own): whatever the manager
// decides about the Actor's current state, it has decided, and its Events
// are recorded, when settled returns the last reconcile's result.
func (h *harness) settled(name string) ctrl.Result {
	h.t.Helper()
	key := types.NamespacedName{Namespace: h.ns, Name: name}
	var res ctrl.Result
	h.g.Eventually(func(g gomega.Gomega) {
		before, err := h.get(name)
		g.Expect(err).NotTo(gomega.HaveOccurred())
		cached := &v1alpha1.Actor{}
		g.Expect(h.r.Client.Get(h.ctx, key, cached)).To(gomega.Succeed())
		g.Expect(cached.ResourceVersion).To(gomega.Equal(before.ResourceVersion), "the cache is behind")
		res, err = h.r.Reconcile(h.ctx, ctrl.Request{NamespacedName: key})
		g.Expect(err).NotTo(gomega.HaveOccurred())
		after, err := h.get(name)
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(after.ResourceVersion).To(gomega.Equal(before.ResourceVersion), "the reconcile still changed the Actor")
	}).Should(gomega.Succeed(), "actor %s never settles", name)
	return res
}

// eventually waits until check passes on the Actor name as the API server
// has it.
func (h *harness) eventually(name string, check func(g gomega.Gomega, x *v1alpha1.Actor)) {
	h.t.Helper()
	h.g.Eventually(func(g gomega.Gomega) {
		x, err := h.get(name)
		g.Expect(err).NotTo(gomega.HaveOccurred())
		check(g, x)
	}).Should(gomega.Succeed(), "actor %s", name)
}
