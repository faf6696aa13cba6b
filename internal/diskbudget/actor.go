package diskbudget

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Credits: what an actor takes from a bucket beyond what one append needs,
// when it is there to take, so that the next appends are counted without
// reading the clock (time.Now is the dearest part of a check). A credit
// lets an actor go at most one credit past its burst.
const (
	creditBytes  = 64 << 10
	creditEvents = 64
)

// Actor is one actor's budget for one run, tied to its host's Node (nil:
// none, as in `troupe run`). Safe for concurrent use, though an actor's
// writes are serialized by the engine (Admit and AdmitBy are not meant to
// overlap for one actor).
type Actor struct {
	lim  Limits
	node *Node
	base time.Time

	mu            sync.Mutex
	bytes, events bucket
	// own and fromNode are credits taken from the actor's buckets and from
	// the node's.
	own, fromNode credit
	// size is the actor's chain on the node, in bytes: what it held when
	// the run began plus every append since.
	size int64

	// waited is the time appends have waited for budget, in nanoseconds.
	waited atomic.Int64
}

// credit is bytes and events taken from buckets and not yet spent.
type credit struct{ bytes, events float64 }

func (c *credit) covers(b float64) bool { return c.bytes >= b && c.events >= 1 }

// NewActor returns the budget of an actor whose chain already holds
// chainBytes, sharing node's.
func NewActor(l Limits, node *Node, chainBytes int64) *Actor {
	a := &Actor{
		lim: l, node: node, base: time.Now(),
		bytes:  newBucket(l.BytesPerSecond, l.BurstBytes),
		events: newBucket(l.EventsPerSecond, l.BurstEvents),
		size:   chainBytes,
	}
	if node == nil {
		a.fromNode = credit{unlimited, unlimited}
	}
	return a
}

// Limits returns the actor's limits.
func (a *Actor) Limits() Limits { return a.lim }

// Admit admits the append of one event of n bytes that a call of the guest
// makes: it refuses it under disk pressure or past the size budget, and
// otherwise waits for the actor's rates and then the node's, unless that
// wait would pass ctx's deadline. A refusal is an *Error; ctx ending while
// it waits returns ctx's error. The fast path, with credit to spend,
// neither allocates nor reads the clock or ctx.
func (a *Actor) Admit(ctx context.Context, n int) error {
	return a.admit(ctx, time.Time{}, n)
}

// AdmitBy is Admit for a writer without a context (the guest's WASI
// output): deadline bounds the wait (zero: no deadline).
func (a *Actor) AdmitBy(deadline time.Time, n int) error {
	return a.admit(context.Background(), deadline, n)
}

func (a *Actor) admit(ctx context.Context, deadline time.Time, n int) error {
	node := a.node
	if node != nil && node.pressure.Load() {
		if err := node.Pressure(); err != nil {
			return err
		}
	}
	b := int64(n)
	fb := float64(b)
	a.mu.Lock()
	if a.lim.MaxChainBytes > 0 && a.size+b > a.lim.MaxChainBytes {
		err := a.sizeErrorLocked(b)
		a.mu.Unlock()
		return err
	}
	if a.own.covers(fb) && a.fromNode.covers(fb) {
		a.spendLocked(fb, b)
		a.mu.Unlock()
		return nil
	}
	return a.admitSlow(ctx, deadline, fb, b)
}

// TryAdmit reports at once, without waiting or spending, whether the
// actor's budget would admit events of n bytes now: nil, or the *Error
// Admit would refuse with (disk pressure, the size budget) or, where Admit
// would wait, a KindRate error. It is for work that can be refused instead
// of waited for: a message a sender would queue for the actor, whose
// appends come later and are charged then. The node's shared rate is not
// consulted (reserving from it may wait); the actor's share of it is
// charged when the appends are made.
func (a *Actor) TryAdmit(n int) error {
	if node := a.node; node != nil && node.pressure.Load() {
		if err := node.Pressure(); err != nil {
			return err
		}
	}
	b := int64(n)
	fb := float64(b)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lim.MaxChainBytes > 0 && a.size+b > a.lim.MaxChainBytes {
		return a.sizeErrorLocked(b)
	}
	if a.own.covers(fb) {
		return nil
	}
	t := time.Since(a.base).Seconds()
	w := max(a.bytes.wait(t, max(0, fb-a.own.bytes)), a.events.wait(t, max(0, 1-a.own.events)))
	if w > 0 {
		return &Error{Kind: KindRate, Message: fmt.Sprintf(
			"the actor's chain budget admits %s more in %s (spec.limits chainBytesPerSecond %d, chainEventsPerSecond %d)",
			Bytes(b), roundWait(seconds(w)), a.lim.BytesPerSecond, a.lim.EventsPerSecond)}
	}
	return nil
}

// spendLocked spends one event of b bytes from both credits.
func (a *Actor) spendLocked(fb float64, b int64) {
	a.own.bytes -= fb
	a.own.events--
	a.fromNode.bytes -= fb
	a.fromNode.events--
	a.size += b
}

// admitSlow tops the credits up, waiting for the actor's rates and then
// the node's. Called with a.mu held; returns with it released.
func (a *Actor) admitSlow(ctx context.Context, deadline time.Time, fb float64, b int64) error {
	now := time.Now()
	if !a.own.covers(fb) {
		t := now.Sub(a.base).Seconds()
		needB, needE := max(0, fb-a.own.bytes), max(0, 1-a.own.events)
		var w float64
		if needB > 0 {
			w = a.bytes.wait(t, needB)
		}
		if needE > 0 {
			w = max(w, a.events.wait(t, needE))
		}
		if w > 0 {
			if d, ok := ctx.Deadline(); ok {
				deadline = d
			}
			if !deadline.IsZero() && now.Add(seconds(w)).After(deadline) {
				a.mu.Unlock()
				return &Error{Kind: KindRate, Message: fmt.Sprintf(
					"appending %s would wait %s for the actor's budget, past the call's deadline: it appends faster than spec.limits allows (chainBytesPerSecond %d, chainBurstBytes %d, chainEventsPerSecond %d, chainBurstEvents %d)",
					Bytes(b), roundWait(seconds(w)), a.lim.BytesPerSecond, a.lim.BurstBytes, a.lim.EventsPerSecond, a.lim.BurstEvents)}
			}
		}
		a.own.bytes += a.bytes.grant(t, w, needB, creditBytes)
		a.own.events += a.events.grant(t, w, needE, creditEvents)
		if w > 0 {
			a.mu.Unlock()
			if err := a.sleep(ctx, seconds(w)); err != nil {
				return err
			}
			now = time.Now()
			a.mu.Lock()
		}
	}
	if !a.fromNode.covers(fb) {
		needB, needE := max(0, fb-a.fromNode.bytes), max(0, 1-a.fromNode.events)
		a.mu.Unlock()
		begin := time.Now()
		gotB, gotE, w, err := a.node.reserve(ctx, deadline, needB, needE, now)
		if w > 0 {
			a.waited.Add(int64(time.Since(begin)))
		}
		if err != nil {
			return err
		}
		a.mu.Lock()
		a.fromNode.bytes += gotB
		a.fromNode.events += gotE
	}
	a.spendLocked(fb, b)
	a.mu.Unlock()
	return nil
}

func (a *Actor) sizeErrorLocked(b int64) *Error {
	what := fmt.Sprintf("appending %s more would pass", Bytes(b))
	if b == 0 {
		what = "it has reached"
	}
	return &Error{Kind: KindSize, Message: fmt.Sprintf(
		"the actor's chain on this node is %s; %s its size budget of %s (spec.limits.maxChainBytes %d): raise it, or start the actor over with a new chain",
		Bytes(a.size), what, Bytes(a.lim.MaxChainBytes), a.lim.MaxChainBytes)}
}

// Charge counts an event of n bytes the host appends on its own account
// (the actor's lifecycle): never refused, never waited for. The rates may
// go into debt, which the actor's next appends, and its next tick
// (Backlog), wait off.
func (a *Actor) Charge(n int) {
	now := time.Now()
	a.mu.Lock()
	t := now.Sub(a.base).Seconds()
	a.bytes.take(t, float64(n))
	a.events.take(t, 1)
	a.size += int64(n)
	a.mu.Unlock()
	if a.node != nil {
		a.node.charge(float64(n), 1, now)
	}
}

// Pressure returns the node's *Error while its disk is below the
// watermark, nil otherwise: what refuses a write of the actor's state
// before it is made (its charge comes later, ChargeState).
func (a *Actor) Pressure() error { return a.node.Pressure() }

// ChargeState counts a write of the actor's saved state, n bytes, when it
// is made: never refused, never waited for (the chain writes it under its
// lock), it takes from the actor's byte rate and the node's, into debt if
// need be. The actor's debt is what its next appends and ticks wait off
// (Backlog) and what refuses messages to it meanwhile (TryAdmit), so an
// actor that changes its state faster than its budget allows is slowed
// down, not failed.
func (a *Actor) ChargeState(n int) {
	now := time.Now()
	a.mu.Lock()
	a.bytes.take(now.Sub(a.base).Seconds(), float64(n))
	a.mu.Unlock()
	if a.node != nil {
		a.node.charge(float64(n), 0, now)
	}
}

// sleep waits d for the actor's own budget, counting the time it took (a
// loaded machine oversleeps) in Waited.
func (a *Actor) sleep(ctx context.Context, d time.Duration) error {
	begin := time.Now()
	err := sleep(ctx, d)
	a.waited.Add(int64(time.Since(begin)))
	return err
}

// Waited returns how long the actor's appends have waited for budget, its
// own and the node's, in all: the engine compares it before and after a
// call, to tell a call that ran out of time waiting for the budget from
// one whose guest was slow.
func (a *Actor) Waited() time.Duration { return time.Duration(a.waited.Load()) }

// Backlog returns how long until the actor's rates are out of debt: the
// tick loop waits that long before it calls tick again, so an actor whose
// ticks write more than its rate ticks less often instead of failing.
func (a *Actor) Backlog() time.Duration {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	t := now.Sub(a.base).Seconds()
	return seconds(max(a.bytes.debt(t), a.events.debt(t)))
}

// CheckStart refuses to start a run whose chain has reached its size
// budget, or while the node is under disk pressure: none of its calls
// could be recorded.
func (a *Actor) CheckStart() error {
	if err := a.node.Pressure(); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lim.MaxChainBytes > 0 && a.size >= a.lim.MaxChainBytes {
		return a.sizeErrorLocked(0)
	}
	return nil
}

// ChainBytes returns the size of the actor's chain as the budget counts it.
func (a *Actor) ChainBytes() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.size
}

// SetChainBytes sets the size of the actor's chain on the node to n: its
// chain file was replaced by a smaller one (rotated, once the archive
// takes the older events), which is what the size budget bounds from
// then on.
func (a *Actor) SetChainBytes(n int64) {
	a.mu.Lock()
	a.size = n
	a.mu.Unlock()
}
