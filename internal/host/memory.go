package host

import (
	"context"
	"fmt"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/memlimit"
	"github.com/troupe-dev/troupe/internal/textutil"
)

// The host's memory (PROTOCOL.md#host-leases, #admission-at-the-host): a
// budget shared by its actors, enforced by the engine at memory.grow, sized
// from the host's memory limit less what the host keeps for itself; each
// start admitted by the memory its component's actors were seen to take,
// plus headroom; the figures declared in the Lease for the manager's
// placement.

const (
	// DefaultMemoryReserve is the least the host keeps for itself out of
	// its memory limit (its caches, its API clients, the Go runtime's
	// slack); a limit of more than 8 times this keeps an eighth.
	DefaultMemoryReserve = 64 << 20
	// DefaultActorMemoryEstimate is what a new actor is expected to take
	// before the host has seen any run: a Go actor (examples/hello) is
	// charged 1.8 MiB of the budget, a small WAT actor far less
	// (docs/performance.md#memory-per-actor).
	DefaultActorMemoryEstimate = 8 << 20
	// memoryRefresh is how often the host measures its actors' memory,
	// brings its budget and its Go memory limit up to date, and closes the
	// compiled code no actor ran for componentIdle.
	memoryRefresh = 2 * time.Second
	componentIdle = time.Minute
	// memoryRecheck is how often a start refused for lack of memory looks
	// again even when no release woke it.
	memoryRecheck = 10 * time.Second
)

// memoryHeadroom is the room a start needs beyond what its component's
// actors were seen to take: a quarter more, as actors grow while they run.
func memoryHeadroom(estimate uint64) uint64 { return estimate + estimate/4 }

// defaultMemoryReserve is what a host with limit keeps for itself unless
// told otherwise.
func defaultMemoryReserve(limit uint64) uint64 { return max(DefaultMemoryReserve, limit/8) }

// budgetLimit is what the actors may take together: limit less what the
// host keeps for itself, the larger of reserve and what the process was
// measured to hold beyond its actors (own), with a sixteenth of the limit
// as slack for the garbage collector when measured.
func budgetLimit(limit, reserve, own uint64) uint64 {
	keep := reserve
	if own > 0 {
		keep = max(reserve, own+limit/16)
	}
	if keep >= limit {
		return 0
	}
	return limit - keep
}

// goMemoryLimit is the soft limit of the Go runtime's own memory: the
// host's limit less the actors' memory outside the Go heap (linear
// memories and compiled code are mapped by wazero, not the runtime), less
// a sixteenth of slack, never under the reserve. The runtime then
// collects harder as the actors' linear memory grows, instead of running
// the pod into its cgroup's OOM killer.
func goMemoryLimit(limit, reserve, outsideGo uint64) uint64 {
	slack := limit / 16
	if outsideGo+slack+reserve >= limit {
		return reserve
	}
	return limit - outsideGo - slack
}

// hostMemory is the host's side of its memory budget.
type hostMemory struct {
	budget *actorhost.MemoryBudget // nil: no limit
	limit  uint64
	// reserve is what the host keeps for itself at least.
	reserve uint64

	mu sync.Mutex
	// starting is what the starts admitted and still under way expect to
	// take: counted against the budget until they end (the engine reserves
	// their memory meanwhile, so they may count twice until then).
	starting uint64
	// started is closed, and replaced, when a start under way ends.
	started chan struct{}
	// stats are the last measured figures; perActor what the host expects
	// a new actor to take (with headroom).
	stats    actorhost.MemoryStats
	rss      uint64
	perActor uint64
	// imageEvictions counts the actors the engine stopped for writing
	// their image past the budget.
	imageEvictions uint64
	// declared is what the Lease said last (used, actors), to renew early
	// when it moved by more than an actor's worth.
	declaredUsed   uint64
	declaredActors int

	// renew asks the lease loop for an early renewal.
	renew chan struct{}
}

func newHostMemory(limit, reserve uint64) *hostMemory {
	m := &hostMemory{limit: limit, renew: make(chan struct{}, 1), started: make(chan struct{}), perActor: memoryHeadroom(DefaultActorMemoryEstimate)}
	if limit == 0 {
		return m
	}
	if reserve == 0 {
		reserve = defaultMemoryReserve(limit)
	}
	m.reserve = reserve
	m.budget = actorhost.NewMemoryBudget(budgetLimit(limit, reserve, 0))
	return m
}

// renewSoon asks for a Lease renewal now (at most one waits).
func (m *hostMemory) renewSoon() {
	select {
	case m.renew <- struct{}{}:
	default:
	}
}

// admission is a start the budget let through; done ends it once the
// engine holds the actor's memory itself (or the start failed).
type admission struct {
	m    *hostMemory
	need uint64
	once sync.Once
}

func (a *admission) done() {
	if a == nil {
		return
	}
	a.once.Do(func() {
		a.m.mu.Lock()
		a.m.starting -= a.need
		close(a.m.started)
		a.m.started = make(chan struct{})
		a.m.mu.Unlock()
	})
}

// tryAdmit admits a start that expects to take need bytes when the budget
// has that much free beside the starts under way. Otherwise it returns a
// channel closed when one of those ends, nil when none is under way: then
// only freed memory can let the start in.
func (m *hostMemory) tryAdmit(need uint64) (*admission, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	avail := m.budget.Available()
	if avail < m.starting || avail-m.starting < need {
		if m.starting > 0 {
			return nil, m.started
		}
		return nil, nil
	}
	m.starting += need
	return &admission{m: m, need: need}, nil
}

// admitMemory waits until the host's budget has room for the actor's start:
// what its component's actors were seen to take (or, before any ran, its
// declared minimum memory and instance), plus headroom. While it has not,
// the actor is Ready=False reason InsufficientMemory, phase unchanged, and
// the Lease is renewed at once with the host's figures, so the manager
// moves it where there is room (PROTOCOL.md#admission-at-the-host).
// waited says it was refused first; ok is false when the run was stopped
// meanwhile.
func (h *Host) admitMemory(ctx context.Context, r *run, a *v1alpha1.Actor, comp *actorhost.Component) (adm *admission, waited, ok bool) {
	m := h.mem
	if m.budget == nil {
		return nil, false, true
	}
	reported := false
	for {
		// Looked at again each time: the actors that started meanwhile
		// may have shown what the component really takes.
		need := memoryHeadroom(h.engine.StartEstimate(comp))
		freed := m.budget.Freed()
		adm, started := m.tryAdmit(need)
		if adm != nil {
			return adm, reported, true
		}
		if started != nil && !reported {
			// Starts under way count twice until they end (their
			// estimate and what the engine reserved): wait for them
			// before calling this a refusal, or a burst of starts on an
			// empty host would refuse all but the first.
			select {
			case <-started:
			case <-freed:
			case <-ctx.Done():
				return nil, false, false
			}
			continue
		}
		if !reported {
			reported = true
			m.mu.Lock()
			free := m.budget.Available() - min(m.starting, m.budget.Available())
			m.mu.Unlock()
			msg := fmt.Sprintf("starting it would pass the host's memory budget: it takes %s, %s of %s is free",
				textutil.FormatBytes(need), textutil.FormatBytes(free), textutil.FormatBytes(m.budget.Limit()))
			h.metrics.memoryRefusals.Inc()
			h.report(r, true, func(v *view) {
				v.ready = &readyCond{status: metav1.ConditionFalse, reason: v1alpha1.ReasonInsufficientMemory, message: msg}
			})
			h.event(a, corev1.EventTypeWarning, v1alpha1.ReasonInsufficientMemory, "Start", msg)
			h.log.Info("refused a start for lack of memory", "actor", r.key, "epoch", r.epoch, "message", msg)
			m.renewSoon()
		}
		select {
		case <-freed:
		case <-started:
		case <-time.After(memoryRecheck):
		case <-ctx.Done():
			return nil, reported, false
		}
	}
}

// runMemory measures the actors' memory every memoryRefresh until ctx
// ends: it brings the budget's accounting up to date, lowers the budget
// when the host itself outgrew its reserve (trackProcess), sets the Go
// runtime's memory limit, closes idle compiled code, and asks for an early
// Lease renewal when the figures moved by more than an actor's worth.
func (h *Host) runMemory(ctx context.Context) {
	t := time.NewTicker(memoryRefresh)
	defer t.Stop()
	for {
		h.refreshMemory(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (h *Host) refreshMemory(ctx context.Context) {
	m := h.mem
	if h.engine.ReleaseIdleComponents(ctx, componentIdle) > 0 && h.cfg.TrackProcessMemory {
		// The code of components nobody runs goes back to the OS now,
		// and the heap the garbage left with it.
		debug.FreeOSMemory()
	}
	st := h.engine.RefreshMemory()
	perActor := uint64(DefaultActorMemoryEstimate)
	seen := false
	h.mu.Lock()
	for _, r := range h.runs {
		if c := r.component(); c != nil {
			est := h.engine.StartEstimate(c)
			if !seen || est > perActor {
				perActor, seen = est, true
			}
		}
	}
	h.mu.Unlock()
	var rss uint64
	if h.cfg.TrackProcessMemory {
		if n, ok, err := memlimit.ResidentBytes(); err == nil && ok {
			rss = n
		}
	}
	m.mu.Lock()
	m.stats, m.rss, m.perActor = st, rss, memoryHeadroom(perActor)
	m.imageEvictions += uint64(st.Evicted)
	m.mu.Unlock()
	if m.budget == nil {
		return
	}
	if h.cfg.TrackProcessMemory && rss > 0 {
		inRAM := st.LinearResident + st.Instance + st.Buffers + st.Code
		own := uint64(0)
		if rss > inRAM {
			own = rss - inRAM
		}
		// Garbage not yet collected is in RSS but is not the host's to
		// keep: the Go memory limit set below makes the runtime collect
		// it before the pod reaches its limit. Counted, it shrank the
		// budget by hundreds of MiB during a burst of starts (1,000 Go
		// actors: to 1,344 MiB of 2,240 at the peak), and the manager
		// held actors back from a host at half its limit.
		if g := memlimit.ReadGo(); g.HeapInUse > g.HeapLive {
			own -= min(own, g.HeapInUse-g.HeapLive)
		}
		m.budget.SetLimit(budgetLimit(m.limit, m.reserve, own))
		// The pages an actor shares with its component's initial memory
		// image are in RAM once, whatever the number of actors; the
		// image itself is counted in Code.
		debug.SetMemoryLimit(int64(goMemoryLimit(m.limit, m.reserve, st.LinearResident-st.LinearShared+st.Code)))
	}
	used, actors, per := m.budget.Used(), st.Actors, m.perActor
	m.mu.Lock()
	moved := actors != m.declaredActors || absDiff(used, m.declaredUsed) > per
	m.mu.Unlock()
	if moved {
		m.renewSoon()
	}
}

func absDiff(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}

// setLeaseMemory writes the host's memory figures into its Lease; none
// when it has no limit.
func (h *Host) setLeaseMemory(l *coordinationv1.Lease) {
	m := h.mem
	if m.budget == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// The starts under way are not in it yet: the manager counts them
	// among the actors assigned beyond memory-actors.
	used := m.budget.Used()
	l.Annotations[v1alpha1.MemoryCapacityAnnotation] = strconv.FormatUint(m.budget.Limit(), 10)
	l.Annotations[v1alpha1.MemoryUsedAnnotation] = strconv.FormatUint(used, 10)
	l.Annotations[v1alpha1.MemoryActorsAnnotation] = strconv.Itoa(m.stats.Actors)
	l.Annotations[v1alpha1.MemoryPerActorAnnotation] = strconv.FormatUint(m.perActor, 10)
	m.declaredUsed, m.declaredActors = used, m.stats.Actors
}
