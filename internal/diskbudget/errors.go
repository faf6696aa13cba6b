package diskbudget

// Kind says which budget refused a write.
type Kind string

const (
	// KindRate: the actor's own byte or event rate (its spec.limits) would
	// have made the write wait past the call's deadline.
	KindRate Kind = "Rate"
	// KindNodeRate: the node-wide rate, shared by the host's actors,
	// would have made the write wait past the call's deadline.
	KindNodeRate Kind = "NodeRate"
	// KindSize: the actor's chain on this node would pass its size budget.
	KindSize Kind = "Size"
	// KindPressure: the free space of the node's data directory is below
	// the host's watermark.
	KindPressure Kind = "Pressure"
)

// Error is why a write was refused. Nothing was written: the caller fails
// the call (and with it the actor) with Message, which names the limit and
// where to raise it.
type Error struct {
	Kind    Kind
	Message string
}

func (e *Error) Error() string { return e.Message }
