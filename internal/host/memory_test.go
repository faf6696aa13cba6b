package host

import (
	"regexp"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/troupe-dev/troupe/api/v1alpha1"
)

const mib = 1 << 20

func TestBudgetLimit(t *testing.T) {
	tests := map[string]struct {
		limit, reserve, own uint64
		want                uint64
	}{
		"unmeasured: the limit less the reserve":       {limit: 1024 * mib, reserve: 128 * mib, want: 896 * mib},
		"the host's own memory within the reserve":     {limit: 1024 * mib, reserve: 128 * mib, own: 40 * mib, want: 896 * mib},
		"the host outgrew its reserve: budget shrinks": {limit: 1024 * mib, reserve: 128 * mib, own: 200 * mib, want: (1024 - 200 - 64) * mib},
		"nothing left": {limit: 100 * mib, reserve: 64 * mib, own: 100 * mib, want: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := budgetLimit(tc.limit, tc.reserve, tc.own); got != tc.want {
				t.Fatalf("budgetLimit = %d MiB, want %d MiB", got/mib, tc.want/mib)
			}
		})
	}
}

func TestGoMemoryLimit(t *testing.T) {
	tests := map[string]struct {
		limit, reserve, outside uint64
		want                    uint64
	}{
		"no actors: all but a sixteenth":          {limit: 1024 * mib, reserve: 128 * mib, want: 960 * mib},
		"linear memory and code outside the heap": {limit: 1024 * mib, reserve: 128 * mib, outside: 500 * mib, want: 460 * mib},
		"never under the reserve":                 {limit: 1024 * mib, reserve: 128 * mib, outside: 900 * mib, want: 128 * mib},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := goMemoryLimit(tc.limit, tc.reserve, tc.outside); got != tc.want {
				t.Fatalf("goMemoryLimit = %d MiB, want %d MiB", got/mib, tc.want/mib)
			}
		})
	}
}

// leaseMemory reads the host's memory annotations.
func (h *harness) leaseMemory() map[string]uint64 {
	var l coordinationv1.Lease
	if err := h.c.Get(h.ctx(), types.NamespacedName{Namespace: h.ns, Name: h.pod}, &l); err != nil {
		return nil
	}
	out := map[string]uint64{}
	for _, k := range []string{v1alpha1.MemoryCapacityAnnotation, v1alpha1.MemoryUsedAnnotation, v1alpha1.MemoryActorsAnnotation, v1alpha1.MemoryPerActorAnnotation} {
		if v, ok := l.Annotations[k]; ok {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				h.t.Fatalf("Lease annotation %s=%q: %v", k, v, err)
			}
			out[k] = n
		}
	}
	return out
}

// testMemoryBudget: a host with a memory limit declares its memory in its
// Lease, serves each actor's memory in /metrics, and refuses a start that
// would pass its budget (Ready=False InsufficientMemory, phase unchanged,
// an Event, an early Lease renewal) until memory frees: once the actor
// that held it is moved away, the refused one starts.
func (s *suite) testMemoryBudget(t *testing.T) {
	g := NewWithT(t)
	h := s.startHost(t, func(c *Config) { c.MemoryLimit, c.MemoryReserve = 1<<40, 64*mib })
	big := testdata(t, "big.wasm")
	h.run("first", v1alpha1.ActorSpec{Component: *h.wasmConfigMap("first-wasm", big)}, 20*time.Second)

	budget := h.host.mem.budget
	g.Expect(budget.Limit()).To(BeEquivalentTo(1<<40 - 64*mib))
	// The Lease declares the budget, what the actors hold (the first
	// one's 4 MiB of linear memory at least) and what a new one takes.
	g.Eventually(h.leaseMemory).WithTimeout(10 * time.Second).Should(SatisfyAll(
		HaveKeyWithValue(v1alpha1.MemoryCapacityAnnotation, budget.Limit()),
		HaveKeyWithValue(v1alpha1.MemoryUsedAnnotation, BeNumerically(">=", 4*mib)),
		HaveKeyWithValue(v1alpha1.MemoryActorsAnnotation, BeEquivalentTo(1)),
		// Seen: 4 MiB of linear memory and its instance, plus a quarter.
		HaveKeyWithValue(v1alpha1.MemoryPerActorAnnotation, BeNumerically(">=", 5*mib)),
	))
	// Each actor's memory is in /metrics, by kind.
	linear := regexp.MustCompile(`troupe_host_actor_memory_bytes\{actor="first",kind="linear",namespace="` + h.ns + `"\} (\S+)`)
	m := linear.FindStringSubmatch(h.metrics())
	g.Expect(m).NotTo(BeNil(), "no linear memory for the actor in /metrics")
	g.Expect(strconv.ParseFloat(m[1], 64)).To(BeEquivalentTo(4 * mib))
	g.Expect(h.metrics()).To(MatchRegexp(`troupe_host_actor_memory_bytes\{actor="first",kind="instance",namespace="[^"]+"\} [1-9]`))
	g.Expect(h.metrics()).To(ContainSubstring("troupe_host_memory_budget_bytes "))

	// Room for 3 MiB more: a second actor of 4 MiB is refused, and waits.
	budget.SetLimit(budget.Used() + 3*mib)
	h.create("second", v1alpha1.ActorSpec{Component: *h.wasmConfigMap("second-wasm", big)})
	h.assign("second", h.pod, 1)
	c := h.waitReason("second", v1alpha1.ReasonInsufficientMemory, 20*time.Second)
	g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(c.Message).To(MatchRegexp(`^starting it would pass the host's memory budget: it takes 5\.\d MiB, 3\.0 MiB of .* is free$`))
	g.Expect(h.get("second").Status.Phase).To(Equal(v1alpha1.PhaseScheduled), "a refusal leaves the phase to the manager")
	g.Eventually(h.events).WithArguments("second").Should(ContainElement(ContainSubstring("InsufficientMemory: starting it would pass the host's memory budget")))
	g.Expect(promtestutil.ToFloat64(h.host.metrics.memoryRefusals)).To(BeEquivalentTo(1))
	g.Consistently(h.ready).WithArguments("second").WithTimeout(time.Second).Should(HaveField("Reason", v1alpha1.ReasonInsufficientMemory))

	// The first actor goes: its memory returns to the budget, and the
	// waiting start goes ahead.
	h.assign("first", "another-host", 2)
	h.waitReason("second", v1alpha1.ReasonRunning, 20*time.Second)
	g.Expect(h.get("second").Status.Phase).To(Equal(v1alpha1.PhaseRunning))
	g.Expect(promtestutil.ToFloat64(h.host.metrics.memoryRefusals)).To(BeEquivalentTo(1), "one refusal per refused start")
	g.Eventually(h.metrics).Should(Not(ContainSubstring(`actor="first"`)), "a stopped actor's memory series stay behind")
}
