package diskbudget

import (
	"github.com/troupe-dev/troupe/internal/limits"
)

// Limits are one actor's budget. A rate of 0 means no limit on that
// dimension, a MaxChainBytes of 0 no size limit; negative values are
// treated as 0.
type Limits struct {
	// BytesPerSecond and BurstBytes bound the bytes the actor appends to
	// its chain and writes as saved state.
	BytesPerSecond, BurstBytes int64
	// EventsPerSecond and BurstEvents bound its chain events.
	EventsPerSecond, BurstEvents int64
	// MaxChainBytes bounds its chain on the node.
	MaxChainBytes int64
}

// DefaultLimits returns the defaults of spec.limits (internal/limits).
func DefaultLimits() Limits {
	return Limits{
		BytesPerSecond:  limits.DefaultChainBytesPerSecond,
		BurstBytes:      limits.DefaultChainBurstBytes,
		EventsPerSecond: limits.DefaultChainEventsPerSecond,
		BurstEvents:     limits.DefaultChainBurstEvents,
		MaxChainBytes:   limits.DefaultMaxChainBytes,
	}
}

// NodeLimits are a host's node-wide budget.
type NodeLimits struct {
	// BytesPerSecond, BurstBytes, EventsPerSecond and BurstEvents bound
	// what all the host's actors append and write together; 0 is no limit.
	BytesPerSecond, BurstBytes, EventsPerSecond, BurstEvents int64
	// MinFreeBytes and MinFreePercent are the free-space watermark: below
	// the larger of the two (MinFreePercent of the filesystem's size) the
	// host starts no actor and refuses appends. 0 and 0 turn it off.
	MinFreeBytes   int64
	MinFreePercent float64
}

// DefaultNodeLimits returns the host's defaults (internal/limits).
func DefaultNodeLimits() NodeLimits {
	return NodeLimits{
		BytesPerSecond:  limits.DefaultNodeChainBytesPerSecond,
		BurstBytes:      limits.DefaultNodeChainBurstBytes,
		EventsPerSecond: limits.DefaultNodeChainEventsPerSecond,
		BurstEvents:     limits.DefaultNodeChainBurstEvents,
		MinFreeBytes:    limits.DefaultDiskMinFreeBytes,
		MinFreePercent:  limits.DefaultDiskMinFreePercent,
	}
}
