package host

import (
	"github.com/prometheus/client_golang/prometheus"
)

// memoryCollector serves the actors' memory and the host's budget at
// scrape time, from the figures the engine keeps: an actor that went
// leaves no stale series behind.
type memoryCollector struct{ h *Host }

var (
	actorMemoryDesc = prometheus.NewDesc("troupe_host_actor_memory_bytes",
		"Memory an actor holds, by kind: linear (what the host's budget holds for its linear memory: the committed pages, less the pages of its module's shared initial memory image that it has not written), linear_resident (the pages of its linear memory in RAM, shared ones included), linear_shared (the part of linear_resident shared with the other actors of its module: image pages it read and never wrote, in RAM once for them all), instance (its instance's heap), buffers (chain buffers and state), code (its share of its component's compiled code).",
		[]string{"namespace", "actor", "kind"}, nil)
	budgetLimitDesc = prometheus.NewDesc("troupe_host_memory_budget_bytes",
		"The memory the host's actors may take together (its limit less what it keeps for itself); 0 when it has no limit.", nil, nil)
	budgetUsedDesc = prometheus.NewDesc("troupe_host_memory_used_bytes",
		"The memory the host's actors hold, compiled code included (what the budget counts).", nil, nil)
	memoryLimitDesc = prometheus.NewDesc("troupe_host_memory_limit_bytes",
		"The host's memory limit (its cgroup's, or --memory-limit); 0 when none.", nil, nil)
	perActorDesc = prometheus.NewDesc("troupe_host_memory_per_actor_bytes",
		"What the host expects a new actor to take (the most one of the components it runs took, plus headroom), as declared in its Lease.", nil, nil)
	growRefusalsDesc = prometheus.NewDesc("troupe_host_memory_grow_refusals_total",
		"Linear-memory growths (memory.grow) the host's budget refused: the guest got -1.", nil, nil)
	imageEvictionsDesc = prometheus.NewDesc("troupe_host_memory_image_evictions_total",
		"Actors the host stopped (reason MemoryLimit) because the pages of their initial memory image that they wrote took the host past its memory budget.", nil, nil)
	residentDesc = prometheus.NewDesc("troupe_host_memory_resident_bytes",
		"The host process's resident memory, as measured at the last refresh (only when it tracks its process).", nil, nil)
)

func (c *memoryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{actorMemoryDesc, budgetLimitDesc, budgetUsedDesc, memoryLimitDesc, perActorDesc, growRefusalsDesc, imageEvictionsDesc, residentDesc} {
		ch <- d
	}
}

func (c *memoryCollector) Collect(ch chan<- prometheus.Metric) {
	h, m := c.h, c.h.mem
	gauge := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	gauge(budgetLimitDesc, m.budget.Limit())
	gauge(budgetUsedDesc, m.budget.Used())
	gauge(memoryLimitDesc, m.limit)
	m.mu.Lock()
	per, rss, evictions := m.perActor, m.rss, m.imageEvictions
	m.mu.Unlock()
	gauge(perActorDesc, per)
	gauge(residentDesc, rss)
	ch <- prometheus.MustNewConstMetric(growRefusalsDesc, prometheus.CounterValue, float64(m.budget.Refusals()))
	ch <- prometheus.MustNewConstMetric(imageEvictionsDesc, prometheus.CounterValue, float64(evictions))
	h.mu.Lock()
	runs := make([]*run, 0, len(h.runs))
	for _, r := range h.runs {
		runs = append(runs, r)
	}
	h.mu.Unlock()
	for _, r := range runs {
		a := r.getActor()
		if a == nil {
			continue
		}
		u := a.MemoryUsage()
		if u.Linear+u.Instance == 0 {
			continue // released
		}
		ns, name := r.key.Namespace, r.key.Name
		gauge(actorMemoryDesc, u.Linear, ns, name, "linear")
		gauge(actorMemoryDesc, u.LinearResident, ns, name, "linear_resident")
		gauge(actorMemoryDesc, u.LinearShared, ns, name, "linear_shared")
		gauge(actorMemoryDesc, u.Instance, ns, name, "instance")
		gauge(actorMemoryDesc, u.Buffers, ns, name, "buffers")
		gauge(actorMemoryDesc, u.Module, ns, name, "code")
	}
}
