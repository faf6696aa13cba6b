//go:build wasip1

package ticker

import (
	// theater initializes first and sets the hooks the exports call.
	_ "github.com/troupe-dev/troupe/sdk/theater"
	"github.com/troupe-dev/troupe/sdk/theater/internal/tickhook"
)

func init() { tickhook.Linked = true }

// exportTick is troupe:actor/ticker#tick: (i32 state-is-some, i32 state-ptr,
// i32 state-len, i64 now-ms) -> i32 pointer to the result area, laid out
// like init's. option<list<u8>> flattens to 3 core values, u64 to an i64.
//
//go:wasmexport troupe:actor/ticker#tick
func exportTick(stateIsSome, statePtr, stateLen uint32, nowMs uint64) uint32 {
	return tickhook.Tick(stateIsSome, statePtr, stateLen, nowMs)
}

// exportPostTick is cabi_post_troupe:actor/ticker#tick: (i32 the pointer
// tick returned) -> ().
//
//go:wasmexport cabi_post_troupe:actor/ticker#tick
func exportPostTick(ret uint32) { tickhook.PostTick(ret) }
