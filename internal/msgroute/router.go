package msgroute

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/msgwire"
	"github.com/troupe-dev/troupe/internal/textutil"
)

// DefaultMovingWait is how long a message waits for a moving target by
// default (capped by its request's deadline).
const DefaultMovingWait = 5 * time.Second

// actorIDIndex indexes the Actors by status.actorID.
const actorIDIndex = "status.actorID"

// Options configure a Router.
type Options struct {
	// Client delivers to the peers.
	Client *msgwire.Client
	// LeaseNamespace is the hosts' namespace, where their Leases are.
	LeaseNamespace string
	// MovingWait bounds the wait for a moving target; 0 is
	// DefaultMovingWait.
	MovingWait time.Duration
	// Now is the clock that judges Leases; nil is time.Now.
	Now func() time.Time
	Log logr.Logger
}

// Router routes and delivers messages to the hosts of their targets. It
// is safe for concurrent use; it implements actorhost.Remote.
type Router struct {
	c    client.Reader
	opts Options

	mu      sync.Mutex
	changed chan struct{}
}

// New makes a Router that reads c, a cache from NewCache (or one holding
// Actors and host Leases likewise): it registers an index and event
// handlers, so call it before c starts.
func New(ctx context.Context, c cache.Cache, opts Options) (*Router, error) {
	if opts.MovingWait == 0 {
		opts.MovingWait = DefaultMovingWait
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Router{c: c, opts: opts, changed: make(chan struct{})}
	if err := c.IndexField(ctx, &v1alpha1.Actor{}, actorIDIndex, func(o client.Object) []string {
		if id := o.(*v1alpha1.Actor).Status.ActorID; id != "" {
			return []string{id}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("indexing Actors by id: %w", err)
	}
	// Any change of an Actor or a Lease wakes the messages waiting for a
	// route: they look again, in memory.
	wake := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { r.wake() },
		UpdateFunc: func(any, any) { r.wake() },
		DeleteFunc: func(any) { r.wake() },
	}
	for _, o := range []client.Object{&v1alpha1.Actor{}, &coordinationv1.Lease{}} {
		inf, err := c.GetInformer(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("an informer of %T: %w", o, err)
		}
		if _, err := inf.AddEventHandler(wake); err != nil {
			return nil, fmt.Errorf("watching %T: %w", o, err)
		}
	}
	return r, nil
}

func (r *Router) wake() {
	r.mu.Lock()
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *Router) changes() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// Route is where a target runs now.
type Route struct {
	// Key is the target Actor's; ActorID its status.actorID.
	Key     types.NamespacedName
	ActorID string
	// HostPod and Epoch are its assignment; Endpoint the host's peer
	// endpoint.
	HostPod  string
	Epoch    int64
	Endpoint string
}

// errMoving is a target with no usable route now: no host, a host whose
// Lease is gone, expired or publishes no endpoint.
type errMoving struct{ why string }

func (e *errMoving) Error() string { return e.why }

// movingError is a message that found no host within the moving wait. It
// is msgwire.ErrMoving and names the last obstacle, without wrapping it:
// a NotHere or a connection failure is not this error's kind.
type movingError struct {
	target string
	wait   time.Duration
	last   error
}

func (e *movingError) Error() string {
	return fmt.Sprintf("%s: actor %s: no host took it within %s (%s)", msgwire.ErrMoving, textutil.Truncate(e.target, maxQuoted), e.wait, e.last)
}

func (e *movingError) Unwrap() error { return msgwire.ErrMoving }

// maxQuoted bounds how much of a target an error quotes.
const maxQuoted = 256

// Route finds target for a sender: an actor id, a name in from's
// namespace, or namespace/name. Errors: actorhost.ErrNoSuchActor,
// actorhost.ErrActorNotRunning (suspended, deleted, ended), or a
// moving target's (not retriable itself: Deliver waits on it).
func (r *Router) Route(ctx context.Context, from actorhost.Sender, target string) (Route, error) {
	a, err := r.actor(ctx, from, target)
	if err != nil {
		return Route{}, err
	}
	rt := Route{Key: types.NamespacedName{Namespace: a.Namespace, Name: a.Name}, ActorID: a.Status.ActorID,
		HostPod: a.Status.HostPod, Epoch: a.Status.Epoch}
	switch {
	case a.DeletionTimestamp != nil:
		return rt, fmt.Errorf("%w: actor %s is being deleted", actorhost.ErrActorNotRunning, a.Name)
	case a.Spec.Suspend:
		return rt, fmt.Errorf("%w: actor %s is suspended", actorhost.ErrActorNotRunning, a.Name)
	case a.Status.Phase == v1alpha1.PhaseFailed || a.Status.Phase == v1alpha1.PhaseSucceeded:
		return rt, fmt.Errorf("%w: actor %s is not running (%s)", actorhost.ErrActorNotRunning, a.Name, a.Status.Phase)
	case a.Status.HostPod == "" || a.Status.ActorID == "":
		return rt, &errMoving{why: "no host runs it"}
	}
	var l coordinationv1.Lease
	if err := r.c.Get(ctx, types.NamespacedName{Namespace: r.opts.LeaseNamespace, Name: a.Status.HostPod}, &l); err != nil {
		if apierrors.IsNotFound(err) {
			return rt, &errMoving{why: "its host " + a.Status.HostPod + " has no Lease"}
		}
		return rt, fmt.Errorf("reading the Lease of %s: %w", a.Status.HostPod, err)
	}
	if expired(&l, r.opts.Now()) {
		return rt, &errMoving{why: "the Lease of its host " + a.Status.HostPod + " expired"}
	}
	rt.Endpoint = l.Annotations[v1alpha1.PeerEndpointAnnotation]
	if rt.Endpoint == "" {
		return rt, &errMoving{why: "its host " + a.Status.HostPod + " publishes no peer endpoint"}
	}
	if p := l.Annotations[v1alpha1.PeerProtocolAnnotation]; p != strconv.Itoa(v1alpha1.PeerProtocolVersion) {
		return rt, &errMoving{why: fmt.Sprintf("its host %s speaks peer protocol %q, not %d", a.Status.HostPod, p, v1alpha1.PeerProtocolVersion)}
	}
	return rt, nil
}

func expired(l *coordinationv1.Lease, now time.Time) bool {
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return false // not judged: the manager's business
	}
	return now.After(l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second))
}

func (r *Router) actor(ctx context.Context, from actorhost.Sender, target string) (*v1alpha1.Actor, error) {
	noSuch := func() error {
		return fmt.Errorf("%w: %q", actorhost.ErrNoSuchActor, textutil.Truncate(target, maxQuoted))
	}
	if target == "" || len(target) > 512 {
		return nil, noSuch()
	}
	if !strings.Contains(target, "/") {
		var l v1alpha1.ActorList
		if err := r.c.List(ctx, &l, client.MatchingFields{actorIDIndex: target}); err != nil {
			return nil, fmt.Errorf("looking actor %q up: %w", textutil.Truncate(target, maxQuoted), err)
		}
		if len(l.Items) == 1 {
			return &l.Items[0], nil
		}
	}
	key := types.NamespacedName{Namespace: from.Namespace, Name: target}
	if ns, name, ok := strings.Cut(target, "/"); ok {
		key = types.NamespacedName{Namespace: ns, Name: name}
	}
	if key.Namespace == "" || key.Name == "" {
		return nil, noSuch()
	}
	var a v1alpha1.Actor
	if err := r.c.Get(ctx, key, &a); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, noSuch()
		}
		return nil, fmt.Errorf("looking actor %q up: %w", textutil.Truncate(target, maxQuoted), err)
	}
	return &a, nil
}

// Retry backoff while a target moves: from the first to the longest wait
// between two routes (a change of an Actor or Lease routes again at once).
const (
	firstBackoff = 20 * time.Millisecond
	maxBackoff   = 500 * time.Millisecond
	minRetry     = 5 * time.Millisecond
)

// Deliver routes d and delivers it (kind: send or request); it returns a
// request's response and the target's actor id. A target that is moving,
// and a host that answers NotHere or cannot be reached before anything
// was written, are waited for and tried again until MovingWait (capped by
// ctx's deadline) has passed; then the error wraps msgwire.ErrMoving. Any
// other failure is returned at once: the message may have been enqueued,
// and it is never sent twice.
func (r *Router) Deliver(ctx context.Context, kind actorhost.MessageKind, d actorhost.Delivery) ([]byte, string, error) {
	give := time.Now().Add(r.opts.MovingWait)
	if dl, ok := ctx.Deadline(); ok {
		// Give up a little before the deadline, so that Moving reaches
		// the sender rather than its own timeout.
		dl = dl.Add(-min(time.Until(dl)/10, 100*time.Millisecond))
		if dl.Before(give) {
			give = dl
		}
	}
	backoff := firstBackoff
	var last error
	for {
		ch := r.changes()
		rt, err := r.Route(ctx, d.From, d.Target)
		var mv *errMoving
		switch {
		case errors.As(err, &mv):
			last = err
		case err != nil:
			return nil, rt.ActorID, err
		default:
			if kind == actorhost.KindRequest && (rt.ActorID == d.From.ActorID || slices.Contains(d.Path, rt.ActorID)) {
				return nil, rt.ActorID, fmt.Errorf("%w: %s → %s", actorhost.ErrRequestCycle, strings.Join(append(slices.Clip(d.Path), d.From.ActorID), " → "), rt.ActorID)
			}
			sent := d
			sent.Target = rt.Key.Namespace + "/" + rt.Key.Name
			resp, err := r.opts.Client.Deliver(ctx, rt.Endpoint, rt.Epoch, kind.String(), sent)
			if err == nil || !(errors.Is(err, msgwire.ErrNotHere) || errors.Is(err, msgwire.ErrNotSent)) {
				return resp, rt.ActorID, err
			}
			last = err
		}
		wait := time.Until(give)
		if wait <= 0 || ctx.Err() != nil {
			return nil, rt.ActorID, &movingError{target: d.Target, wait: r.opts.MovingWait, last: last}
		}
		pause(ctx, ch, backoff, wait)
		backoff = min(2*backoff, maxBackoff)
	}
}

// pause waits before routing again: backoff, or until the cluster's Actors
// or Leases change (ch), then minRetry more, so a busy cluster does not
// make routing spin; never past wait, nor past ctx.
func pause(ctx context.Context, ch <-chan struct{}, backoff, wait time.Duration) {
	timer := time.NewTimer(min(backoff, wait))
	defer timer.Stop()
	select {
	case <-ch:
		timer.Reset(min(minRetry, wait))
		select {
		case <-timer.C:
		case <-ctx.Done():
		}
	case <-timer.C:
	case <-ctx.Done():
	}
}
