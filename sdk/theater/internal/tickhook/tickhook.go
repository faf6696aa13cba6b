package tickhook

var (
	// Tick and PostTick implement troupe:actor/ticker#tick and its
	// cabi_post; package theater sets them when it initializes (wasip1).
	Tick     func(stateIsSome, statePtr, stateLen uint32, nowMs uint64) uint32
	PostTick func(ret uint32)
	// Linked is set by package ticker's initialization: the module exports
	// tick, so a tick function must be registered.
	Linked bool
)
