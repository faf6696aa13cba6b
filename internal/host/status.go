package host

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/troupe-dev/troupe/api/v1alpha1"
)

// view is what the host has to say in one actor's status, for the epoch
// it runs: the fields the protocol gives the host, nothing else.
type view struct {
	epoch      int64
	generation int64
	// phase is written when set; "" leaves the controller's.
	phase v1alpha1.Phase
	// ready is the Ready condition; nil leaves it.
	ready *readyCond
	// head and length are the chain's, when hasChain.
	hasChain bool
	head     string
	length   uint64
	// lastError is written when set; clearLastError empties it (the actor
	// runs again).
	lastError      string
	clearLastError bool
	// stateLost, when set, is the message of the StateLost condition: the
	// run started a new chain segment without the actor's state.
	stateLost string
	// archiveGap, when set, is the message of the ArchiveGap condition:
	// the run started from an archive behind the status head.
	archiveGap string
	// archived is the Archived condition; nil leaves it.
	archived *readyCond
}

type readyCond struct {
	status  metav1.ConditionStatus
	reason  string
	message string
}

// publisher writes the hosts's views of its actors into their status: at
// most one write per actor per interval for chain-head moves, lifecycle
// transitions at once; each write is an Update with the resourceVersion it
// read, made only while the fresh object still names this host and the
// view's epoch.
//
// Lifecycle writes (urgent: Running, Failed, Stopped) have their own queue
// and go first: a head-only write waits while one is queued or being
// written. Under the host's QPS cap, 1,000 ticking actors keep hundreds of
// head writes queued; in one FIFO a start's Running waited behind all of
// them (seconds), now behind at most the head writes already in flight.
//
// All actors together, head-only writes are capped by limiter (the host's
// --status-writes-per-second): a worker waits for a token before it takes
// a key's view, so the heads that moved meanwhile coalesce into the one
// write each key gets when its turn comes (the workqueue holds a key once).
// Lifecycle writes take a token when one is free, but never wait for one.
type publisher struct {
	c        client.Client // writes, and reads from the cache
	api      client.Reader // fresh reads after a conflict
	pod      string
	node     string // the host's node, which keeps the chains it publishes
	interval time.Duration
	// limiter caps the host's status writes; nil is no cap.
	limiter *rate.Limiter
	log     logr.Logger
	metrics *hostMetrics
	now     func() time.Time

	// urgentQ holds keys with a lifecycle write pending, queue the rest.
	// A key may be in both; entry.inflight keeps its writes one at a time,
	// in order.
	urgentQ workqueue.TypedRateLimitingInterface[types.NamespacedName]
	queue   workqueue.TypedRateLimitingInterface[types.NamespacedName]

	mu      sync.Mutex
	entries map[types.NamespacedName]*entry
	// urgentBusy counts urgent writes being made.
	urgentBusy int
	// written is closed and replaced after every write attempt (and every
	// urgent key handled), so that flush can wait for the queue to drain
	// and head writes for the urgent ones.
	written chan struct{}
}

type entry struct {
	v      view
	dirty  bool
	urgent bool
	// retrying: a failed write waits in the queue for its backoff; flush
	// must not add it again, which would skip the backoff.
	retrying bool
	// inflight: a worker is writing this key; another worker that picks
	// it up leaves it, and the writer queues it again if it changed.
	inflight  bool
	lastWrite time.Time
}

// newPublisher makes a publisher that writes at most perSecond status
// writes a second, all actors together (head-only writes wait for their
// turn; lifecycle writes do not); perSecond <= 0 is no cap.
func newPublisher(c client.Client, api client.Reader, pod string, interval time.Duration, perSecond float64, log logr.Logger, m *hostMetrics) *publisher {
	var lim *rate.Limiter
	if perSecond > 0 {
		// A second's worth of burst: a host that was quiet writes the first
		// heads at once.
		lim = rate.NewLimiter(rate.Limit(perSecond), max(1, int(perSecond)))
	}
	return &publisher{
		c: c, api: api, pod: pod, interval: interval, limiter: lim, log: log, metrics: m, now: time.Now,
		urgentQ: newStatusQueue("status-lifecycle"),
		queue:   newStatusQueue("status"),
		entries: map[types.NamespacedName]*entry{},
		written: make(chan struct{}),
	}
}

func newStatusQueue(name string) workqueue.TypedRateLimitingInterface[types.NamespacedName] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](100*time.Millisecond, 10*time.Second),
		workqueue.TypedRateLimitingQueueConfig[types.NamespacedName]{Name: name})
}

// queueFor is the queue for e's next write. Called with mu held.
func (p *publisher) queueFor(e *entry) workqueue.TypedRateLimitingInterface[types.NamespacedName] {
	if e.urgent {
		return p.urgentQ
	}
	return p.queue
}

// begin starts the view of a new run (a new epoch or generation). Its
// first non-urgent report (Starting) waits one interval, so a start that
// is quick costs one write, Running, not two.
func (p *publisher) begin(key types.NamespacedName, epoch, generation int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.entries[key]
	if e == nil {
		e = &entry{}
		p.entries[key] = e
	}
	e.v = view{epoch: epoch, generation: generation}
	e.dirty, e.urgent = false, false
	if now := p.now(); e.lastWrite.Before(now) {
		e.lastWrite = now
	}
}

// update changes key's view with fn and schedules a write: at once when
// urgent, else at most one per interval. A view of an older epoch than the
// one held is dropped; a newer epoch starts a fresh view.
func (p *publisher) update(key types.NamespacedName, epoch int64, urgent bool, fn func(*view)) {
	p.mu.Lock()
	e := p.entries[key]
	if e == nil {
		e = &entry{v: view{epoch: epoch}}
		p.entries[key] = e
	}
	switch {
	case epoch < e.v.epoch:
		// A late word about an epoch that is over.
		p.mu.Unlock()
		return
	case epoch > e.v.epoch:
		e.v = view{epoch: epoch}
	}
	fn(&e.v)
	e.dirty = true
	e.urgent = e.urgent || urgent
	q := p.queueFor(e)
	p.mu.Unlock()
	q.Add(key)
}

// forget drops key: the actor is no longer assigned here.
func (p *publisher) forget(key types.NamespacedName) {
	p.mu.Lock()
	delete(p.entries, key)
	p.mu.Unlock()
}

// run writes until ctx ends, with workers goroutines for each queue.
func (p *publisher) run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for p.next(ctx, p.urgentQ) {
			}
		})
		wg.Go(func() {
			for p.next(ctx, p.queue) {
			}
		})
	}
	<-ctx.Done()
	p.urgentQ.ShutDown()
	p.queue.ShutDown()
	p.mu.Lock()
	p.signal() // head writers waiting for urgent ones
	p.mu.Unlock()
	wg.Wait()
}

// signal wakes whoever waits on written. Called with mu held.
func (p *publisher) signal() {
	close(p.written)
	p.written = make(chan struct{})
}

// yield waits, for a head-only write, until no urgent write is queued or
// being made (or ctx ends). Called with mu held; returns with it held.
func (p *publisher) yield(ctx context.Context) {
	for (p.urgentQ.Len() > 0 || p.urgentBusy > 0) && ctx.Err() == nil && !p.urgentQ.ShuttingDown() {
		ch := p.written
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		p.mu.Lock()
	}
}

func (p *publisher) next(ctx context.Context, q workqueue.TypedRateLimitingInterface[types.NamespacedName]) bool {
	key, shutdown := q.Get()
	if shutdown {
		return false
	}
	defer q.Done(key)
	urgentQ := q == p.urgentQ
	tokenTaken := false
	p.mu.Lock()
	if urgentQ {
		// However it ends, a head writer waiting on this key may go on.
		defer func() {
			p.mu.Lock()
			p.signal()
			p.mu.Unlock()
		}()
	}
again:
	if !urgentQ {
		p.yield(ctx)
	}
	e := p.entries[key]
	if e != nil && e.inflight {
		// Its writer queues it again when done if it is still dirty.
		p.mu.Unlock()
		q.Forget(key)
		return true
	}
	if e == nil || !e.dirty {
		if e != nil {
			e.retrying = false
		}
		p.mu.Unlock()
		q.Forget(key)
		return true
	}
	if e.urgent && !urgentQ {
		// Became urgent while queued here; it is in urgentQ too.
		p.mu.Unlock()
		q.Forget(key)
		return true
	}
	if wait := e.lastWrite.Add(p.interval).Sub(p.now()); !e.urgent && wait > 0 {
		p.mu.Unlock()
		q.AddAfter(key, wait)
		return true
	}
	if p.limiter != nil && !tokenTaken {
		p.mu.Unlock()
		if urgentQ {
			// Prompt, whatever the cap: it takes a token when one is
			// free, and never runs the bucket into debt, which would hold
			// every head back for minutes after a mass start.
			p.limiter.Allow()
		} else if err := p.limiter.Wait(ctx); err != nil {
			// Shutting down: flush writes what is left.
			q.Forget(key)
			return true
		}
		// The view may have moved on while this worker waited (and a
		// flush or a lifecycle write may have taken it): look again, with
		// the token in hand.
		tokenTaken = true
		p.mu.Lock()
		goto again
	}
	v := e.v
	e.dirty, e.urgent, e.retrying = false, false, false
	e.inflight = true
	e.lastWrite = p.now()
	if urgentQ {
		p.urgentBusy++
	}
	p.mu.Unlock()

	err := p.write(ctx, key, v)
	p.mu.Lock()
	e.inflight = false
	if urgentQ {
		p.urgentBusy--
	}
	var again workqueue.TypedRateLimitingInterface[types.NamespacedName]
	if p.entries[key] == e {
		switch {
		case err != nil:
			// A lifecycle write that failed stays ahead of head writes.
			e.dirty, e.retrying = true, true
			e.urgent = e.urgent || urgentQ
		case e.dirty:
			// Changed while being written; a worker that picked it up
			// meanwhile left it to us.
			again = p.queueFor(e)
		}
	}
	p.signal()
	p.mu.Unlock()
	if err != nil {
		p.log.Error(err, "writing actor status", "actor", key, "epoch", v.epoch)
		q.AddRateLimited(key)
		return true
	}
	q.Forget(key)
	if again != nil {
		again.Add(key)
	}
	return true
}

// write puts v into key's status, re-reading on conflicts.
func (p *publisher) write(ctx context.Context, key types.NamespacedName, v view) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var a v1alpha1.Actor
	var reader client.Reader = p.c
	for attempt := 0; ; attempt++ {
		if err := reader.Get(ctx, key, &a); err != nil {
			if apierrors.IsNotFound(err) {
				p.metrics.statusWrites.WithLabelValues("skipped").Inc()
				return nil
			}
			return err
		}
		if !a.AssignedTo(p.pod, v.epoch) {
			// Another host (or a later epoch) owns the status now.
			p.metrics.statusWrites.WithLabelValues("skipped").Inc()
			return nil
		}
		st := a.Status.DeepCopy()
		v.apply(st, p.now(), p.node)
		if apiequality.Semantic.DeepEqual(st, &a.Status) {
			return nil
		}
		a.Status = *st
		err := p.c.Status().Update(ctx, &a)
		switch {
		case err == nil:
			p.metrics.statusWrites.WithLabelValues("ok").Inc()
			return nil
		case apierrors.IsConflict(err) && attempt < 5:
			p.metrics.statusWrites.WithLabelValues("conflict").Inc()
			reader = p.api
			continue
		case apierrors.IsNotFound(err):
			p.metrics.statusWrites.WithLabelValues("skipped").Inc()
			return nil
		}
		p.metrics.statusWrites.WithLabelValues("error").Inc()
		return err
	}
}

// apply writes v into st; node is the host's, which keeps the chain. The
// chain's updatedAt moves only with the head, and the Ready condition's
// transition time only with its status, so a view that says nothing new
// leaves st as it was.
func (v *view) apply(st *v1alpha1.ActorStatus, now time.Time, node string) {
	if v.phase != "" {
		st.Phase = v.phase
	}
	if v.ready != nil {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: v1alpha1.ConditionReady, Status: v.ready.status, Reason: v.ready.reason,
			Message: v.ready.message, ObservedGeneration: v.generation,
		})
	}
	if v.hasChain && (st.Chain == nil || st.Chain.Head != v.head || st.Chain.Length != int64(v.length) || st.Chain.Node != node) {
		st.Chain = &v1alpha1.ChainStatus{Head: v.head, HeadShort: v1alpha1.ShortHead(v.head),
			Length: int64(v.length), UpdatedAt: &metav1.Time{Time: now}, Node: node}
	}
	// Set anew at each loss or gap, so that the transition time is this
	// one's, not the first one's; never set back.
	setAnew(st, v1alpha1.ConditionStateLost, v1alpha1.ReasonNoStateOnNode, v.stateLost, v.generation, now)
	setAnew(st, v1alpha1.ConditionArchiveGap, v1alpha1.ReasonEventsLost, v.archiveGap, v.generation, now)
	if v.archived != nil {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: v1alpha1.ConditionArchived, Status: v.archived.status, Reason: v.archived.reason,
			Message: v.archived.message, ObservedGeneration: v.generation,
		})
	}
	switch {
	case v.lastError != "":
		st.LastError = v.lastError
	case v.clearLastError:
		st.LastError = ""
	}
}

// setAnew sets condition typ True with msg, anew (a fresh transition
// time) unless it says that already; an empty msg leaves it.
func setAnew(st *v1alpha1.ActorStatus, typ, reason, msg string, generation int64, now time.Time) {
	if c := meta.FindStatusCondition(st.Conditions, typ); msg == "" || (c != nil && c.Status == metav1.ConditionTrue && c.Message == msg) {
		return
	}
	meta.RemoveStatusCondition(&st.Conditions, typ)
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: typ, Status: metav1.ConditionTrue, Reason: reason,
		Message: msg, ObservedGeneration: generation, LastTransitionTime: metav1.NewTime(now),
	})
}

// flush waits until no view is waiting to be written (at most until ctx
// ends), writing the pending ones at once; one whose write failed is
// retried after its backoff, not at once.
func (p *publisher) flush(ctx context.Context) {
	for {
		p.mu.Lock()
		pending := false
		for key, e := range p.entries {
			if e.inflight {
				// A write taken before the flush may carry an older view
				// than the one the flush must leave: wait for it too (its
				// writer queues the key again if it is dirty by then).
				pending = true
			}
			if e.dirty {
				pending = true
				e.urgent = true
				if !e.retrying && !e.inflight {
					p.urgentQ.Add(key)
				}
			}
		}
		ch := p.written
		p.mu.Unlock()
		if !pending {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}
