package actorhost

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/troupe-dev/troupe/internal/textutil"
)

// ErrComponentReleased: the component was closed by ReleaseIdleComponents
// between its Compile and the Start that uses it; compile it again.
var ErrComponentReleased = errors.New("the component was released since it was compiled; compile it again")

// tickStacks is how many call stacks a ticking actor keeps after boot
// (tick and cabi_realloc); an idle one keeps none.
const tickStacks = 2

// codeRatio estimates compiled code from module bytes where the process's
// mappings can't be read: on amd64, examples/hello's 3.4 MB module compiles
// to 12.6 MB of machine code (docs/performance.md).
const codeRatio = 4

// instanceBytes is the heap one instance of c is expected to take, ticking
// or not.
func (c *Component) instanceBytes(ticking bool) uint64 {
	stacks := 0
	if ticking {
		stacks = tickStacks
	}
	return c.shape.instanceBytes(c.importedFuncs, stacks)
}

// MemoryUsage is the memory one actor holds, by kind, in bytes.
type MemoryUsage struct {
	// Linear is what the host's budget holds for its linear memory: the
	// committed pages (the guest may use them without asking again),
	// reserved as it grows them, less the pages of its module's shared
	// initial memory image that it has not written (in RAM once for every
	// instance, and charged once, with the code).
	Linear uint64
	// LinearResident is the part of Linear in RAM now (pages it touched),
	// as RSS counts them: a page shared with other actors counts for each.
	LinearResident uint64
	// LinearShared is the part of LinearResident still shared with the
	// other actors of its component: pages of the module's initial memory
	// image that it read and never wrote, one copy in RAM for them all.
	LinearShared uint64
	// Instance is its instance's own heap, from the module's shape.
	Instance uint64
	// Buffers is what its chain buffers and its saved state hold.
	Buffers uint64
	// Module is its share of its component's compiled code (the code
	// divided among the actors that run it).
	Module uint64
}

// Total is what the actor holds: everything but LinearResident, which is
// part of Linear.
func (u MemoryUsage) Total() uint64 { return u.Linear + u.Instance + u.Buffers + u.Module }

// MemoryUsage reports the memory the actor holds now. It takes no call
// lock: a long call does not delay it.
func (a *Actor) MemoryUsage() MemoryUsage {
	var u MemoryUsage
	if l := a.lim.Load(); l != nil {
		u.Linear = l.reservedBytes()
		u.LinearResident, u.LinearShared = l.residentBytes()
	}
	u.Instance = a.instanceHeld.Load()
	u.Buffers = a.buffersHeld.Load()
	u.Module = a.e.moduleShare(a.component)
	return u
}

// MemoryResidentBytes reports the RAM held by the actor's linear memory
// (pages the guest touched).
func (a *Actor) MemoryResidentBytes() uint64 { return a.MemoryUsage().LinearResident }

// reserveInstance reserves the instance's heap and its declared minimum
// linear memory in the host's budget before instantiating: wazero can't
// fail the first allocation gracefully. The error names the budget.
func (a *Actor) reserveInstance() error {
	c := a.component
	inst := c.instanceBytes(a.tickInterval > 0 && c.Ticks())
	minBytes := uint64(c.memMin) * wasmPageSize
	if a.e.budget.TryReserve(inst) {
		a.instanceHeld.Store(inst)
		if a.limiter.prereserve(minBytes) {
			return nil
		}
	}
	b := a.e.budget
	return newActorError(ReasonMemoryLimit, "instantiate",
		"the host's memory budget for its actors is spent: the instance needs %s (%d pages of declared minimum memory and %s of its own), %s of %s is free",
		textutil.FormatBytes(minBytes+inst), c.memMin, textutil.FormatBytes(inst), textutil.FormatBytes(b.Available()), textutil.FormatBytes(b.Limit()))
}

// releaseMemory gives back everything the run held in the budget: the
// linear memory (unmapped here if wazero did not), the instance's heap,
// the buffers. Called with the call lock held, once the module is closed.
func (a *Actor) releaseMemory() {
	if l := a.lim.Load(); l != nil {
		l.free()
	}
	a.e.budget.Release(a.instanceHeld.Swap(0))
	a.mu.Lock()
	a.e.budget.adjust(&a.buffersHeld, 0)
	a.mu.Unlock()
}

// syncBuffers charges the budget with what the chain's buffers and the
// state hold now (memory already taken: it is counted whatever the limit).
func (a *Actor) syncBuffers() {
	n := uint64(a.chain.BufferedBytes())
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.released {
		return
	}
	n += uint64(len(a.state.state))
	a.e.budget.adjust(&a.buffersHeld, n)
}

// observe records what the actor holds as its component's peak, the
// estimate of its next start.
func (a *Actor) observe() {
	c := a.component
	u := a.MemoryUsage()
	n := u.Linear + u.Instance + u.Buffers
	for {
		old := c.peak.Load()
		if n <= old || c.peak.CompareAndSwap(old, n) {
			return
		}
	}
}

// StartEstimate is the memory a new actor of c is expected to take from
// the budget: the most one of its actors held so far (observed), or
// before any ran, its declared minimum memory (less a shared image, which
// is charged once) and its instance.
func (e *Engine) StartEstimate(c *Component) uint64 {
	linear := uint64(c.memMin) * wasmPageSize
	if img := c.image; img != nil && img.shared() && canCountImageWrites() {
		linear -= min(img.size, linear)
	}
	return max(c.peak.Load(), linear+c.instanceBytes(c.Ticks()))
}

// moduleShare is c's compiled code divided among the actors that run it.
func (e *Engine) moduleShare(c *Component) uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.moduleShareLocked(c)
}

func (e *Engine) moduleShareLocked(c *Component) uint64 {
	if c == nil || c.users == 0 || c.released {
		return 0
	}
	var total uint64
	for _, ce := range e.components {
		if ce.c != nil {
			total += uint64(ce.c.size)
		}
	}
	if total == 0 {
		return 0
	}
	return e.codeHeld.Load() * uint64(c.size) / total / uint64(c.users)
}

// refreshCode charges the budget with the compiled code the process holds
// (measured from its executable mappings where it can be, else estimated
// from the live components' sizes), and with their initial memory images:
// one copy each, whatever number of actors share it.
func (e *Engine) refreshCode() {
	n, ok := codeMappedBytes()
	e.mu.Lock()
	for _, ce := range e.components {
		if ce.c == nil {
			continue
		}
		if !ok {
			n += codeRatio * uint64(ce.c.size)
		}
		if img := ce.c.image; img != nil {
			n += img.size
		}
	}
	e.mu.Unlock()
	e.budget.adjust(&e.codeHeld, n)
}

// ReleaseIdleComponents closes the compiled modules that no actor has run
// for idle, so that the code of components nobody uses any more goes back
// to the OS, and returns how many it closed. A later Compile of the same
// bytes compiles again (from the on-disk compilation cache, when there is
// one).
func (e *Engine) ReleaseIdleComponents(ctx context.Context, idle time.Duration) int {
	now := time.Now()
	var closing []*Component
	e.mu.Lock()
	for digest, ce := range e.components {
		select {
		case <-ce.done:
		default:
			continue // still compiling
		}
		c := ce.c
		if c == nil || c.users > 0 || now.Sub(c.idleFrom) < idle {
			continue
		}
		c.released = true
		delete(e.components, digest)
		closing = append(closing, c)
	}
	e.mu.Unlock()
	for _, c := range closing {
		c.close(ctx, e)
	}
	if len(closing) > 0 {
		e.refreshCode()
	}
	return len(closing)
}

// MemoryStats is what the engine's actors hold, all together.
type MemoryStats struct {
	// Actors is how many actors hold memory (started and not released).
	Actors int
	// Linear, LinearResident, LinearShared, Instance and Buffers are the
	// sums of the actors' MemoryUsage.
	Linear, LinearResident, LinearShared, Instance, Buffers uint64
	// Code is the compiled code of the live components.
	Code uint64
	// Components is how many compiled components the engine keeps.
	Components int
	// Evicted is how many actors this refresh stopped for writing their
	// initial memory image past the host's budget (overBudget).
	Evicted int
}

// Total is what the actors hold, code included: what their budget counts.
func (s MemoryStats) Total() uint64 { return s.Linear + s.Instance + s.Buffers + s.Code }

// RefreshMemory brings the budget up to date with what the actors'
// buffers and the compiled code hold now (linear memory and instances are
// charged as they are taken), records each actor's figure as its
// component's peak, and returns the totals. The host calls it every few
// seconds; it reads each linear memory's resident pages (mincore), so it
// is not for a hot path.
func (e *Engine) RefreshMemory() MemoryStats {
	e.refreshCode()
	e.mu.Lock()
	actors := make([]*Actor, 0, len(e.actors))
	for a := range e.actors {
		actors = append(actors, a)
	}
	st := MemoryStats{Code: e.codeHeld.Load(), Components: len(e.components)}
	e.mu.Unlock()
	var writers []imageWriter // the actors that wrote image since the last refresh
	for _, a := range actors {
		if l := a.lim.Load(); l != nil {
			if written, grewBy := l.recount(); grewBy > 0 {
				writers = append(writers, imageWriter{a, written, grewBy})
			}
		}
	}
	st.Evicted = e.overBudget(writers)
	for _, a := range actors {
		a.syncBuffers()
		u := a.MemoryUsage()
		if u.Linear+u.Instance == 0 {
			continue // not instantiated (yet), or released
		}
		a.observe()
		st.Actors++
		st.Linear += u.Linear
		st.LinearResident += u.LinearResident
		st.LinearShared += u.LinearShared
		st.Instance += u.Instance
		st.Buffers += u.Buffers
	}
	return st
}

// imageWriter is an actor that wrote pages of its initial memory image
// since the last refresh: grewBy bytes of them, written in all.
type imageWriter struct {
	a               *Actor
	written, grewBy uint64
}

// overBudget stops the actors that put the host over its budget by
// writing pages of their initial memory image, which no grow asked the
// budget for (memoryLimiter's credit): when the refresh's recount, which
// charged those writes, leaves the budget overspent, the part of the
// excess they explain is taken back by failing the writers that wrote the
// most since the last refresh, reason MemoryLimit. An overspend that they
// don't explain (the limit was lowered, buffers grew) stops nobody: the
// budget then refuses grows and starts until actors give memory back. It
// returns how many it stopped.
func (e *Engine) overBudget(writers []imageWriter) int {
	b := e.budget
	if b == nil || len(writers) == 0 || b.Used() <= b.Limit() {
		return 0
	}
	used, limit := b.Used(), b.Limit()
	var written uint64
	for _, w := range writers {
		written += w.grewBy
	}
	slices.SortFunc(writers, func(x, y imageWriter) int { return cmp.Compare(y.grewBy, x.grewBy) })
	excess, stopped := min(used-limit, written), 0
	for _, w := range writers {
		if excess == 0 {
			break
		}
		w.a.evict(newActorError(ReasonMemoryLimit, "memory",
			"stopped to bring the host back under its memory budget for its actors (%s of %s in use): the actor wrote %s of its module's initial memory image since the last measurement (%s in all), pages that are its own once written",
			textutil.FormatBytes(used), textutil.FormatBytes(limit), textutil.FormatBytes(w.grewBy), textutil.FormatBytes(w.written)))
		excess -= min(excess, w.grewBy)
		stopped++
	}
	return stopped
}
