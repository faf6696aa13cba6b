package host

import "github.com/prometheus/client_golang/prometheus"

// runStateNames label troupe_host_actors; every state is exported, at 0
// when no run is in it, so a dashboard's series never vanish.
var runStateNames = [...]string{stateStarting: "starting", stateRunning: "running", stateEnded: "ended"}

var actorsByStateDesc = prometheus.NewDesc("troupe_host_actors",
	"Actors assigned to the host by the state of their run: starting (fetching, compiling, waiting for env or memory, in init), running, or ended (stopped by itself, failed, or could not start; kept until the assignment changes).",
	[]string{"state"}, nil)

// actorStates exports troupe_host_actors from the host's runs at scrape
// time, so it is never stale and costs nothing between scrapes.
type actorStates struct{ h *Host }

func (c actorStates) Describe(ch chan<- *prometheus.Desc) { ch <- actorsByStateDesc }

func (c actorStates) Collect(ch chan<- prometheus.Metric) {
	n := c.h.countByState()
	for s, name := range runStateNames {
		ch <- prometheus.MustNewConstMetric(actorsByStateDesc, prometheus.GaugeValue, float64(n[s]), name)
	}
}

// countByState counts the host's runs by state.
func (h *Host) countByState() (n [len(runStateNames)]int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.runs {
		r.mu.Lock()
		if s := int(r.state); s >= 0 && s < len(n) {
			n[s]++
		}
		r.mu.Unlock()
	}
	return n
}
