// Command monitoring is the seed's application-monitoring use case: it reads
// the node's facts with get-system-info, records memory metrics (and the
// actor's own heap), and logs a status line, warning when memory use passes
// MEMORY_WARN_PERCENT (default 90).
package main

import (
	"fmt"
	"runtime"
	"strconv"

	"github.com/troupe-dev/troupe/sdk/theater"
)

func init() {
	theater.OnInit(func(state []byte, hasState bool, _ string) ([]byte, error) {
		if err := recordHealthMetrics(); err != nil {
			return nil, err
		}
		// Monitoring keeps no state of its own: hand back what it was given.
		if !hasState {
			return nil, nil
		}
		return state, nil
	})
}

func main() {}

const defaultWarnPercent = 90.0

func recordHealthMetrics() error {
	info := theater.GetSystemInfo()

	if info.MemoryTotal == 0 || info.MemoryAvailable > info.MemoryTotal {
		// A percentage of nothing is meaningless; say so rather than divide.
		return theater.Warn(fmt.Sprintf("host %s reported memory total=%d available=%d: skipping memory metrics",
			info.Hostname, info.MemoryTotal, info.MemoryAvailable))
	}
	used := info.MemoryTotal - info.MemoryAvailable
	percent := float64(used) / float64(info.MemoryTotal) * 100

	var heap runtime.MemStats
	runtime.ReadMemStats(&heap)

	metrics := []struct {
		name  string
		value float64
	}{
		{"memory_used_bytes", float64(used)},
		{"memory_usage_percent", percent},
		{"memory_available_bytes", float64(info.MemoryAvailable)},
		{"cpus", float64(info.CPUCount)},
		{"uptime_seconds", float64(info.Uptime)},
		// The actor's own footprint: what it costs the node to run it.
		{"actor_heap_bytes", float64(heap.HeapAlloc)},
	}
	for _, m := range metrics {
		if err := theater.RecordMetric(m.name, m.value); err != nil {
			return err
		}
	}

	warnAt := warnPercent()
	level := theater.LevelInfo
	if percent >= warnAt {
		level = theater.LevelWarn
	}
	return theater.Log(level, fmt.Sprintf(
		"Health metrics recorded: Memory %.1f%% (%d of %d bytes used, warn at %.0f%%), %d CPUs, host %s (%s %s), up %ds",
		percent, used, info.MemoryTotal, warnAt, info.CPUCount, info.Hostname, info.OSType, info.OSRelease, info.Uptime))
}

// warnPercent reads MEMORY_WARN_PERCENT, falling back to the default (with a
// warning) when it is not a number between 0 and 100.
func warnPercent() float64 {
	raw, ok := theater.Getenv("MEMORY_WARN_PERCENT")
	if !ok {
		return defaultWarnPercent
	}
	v, err := strconv.ParseFloat(raw, 64)
	if err != nil || v < 0 || v > 100 {
		_ = theater.Warn(fmt.Sprintf("MEMORY_WARN_PERCENT=%q is not a percentage (0-100); using %.0f", raw, defaultWarnPercent))
		return defaultWarnPercent
	}
	return v
}
