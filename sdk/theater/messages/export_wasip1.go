//go:build wasip1

package messages

import (
	// theater initializes first and sets the hooks the exports call.
	_ "github.com/troupe-dev/troupe/sdk/theater"
	"github.com/troupe-dev/troupe/sdk/theater/internal/msghook"
)

func init() { msghook.Linked = true }

// exportHandleSend is theater:simple/message-server-client#handle-send:
// (i32 state-is-some, i32 state-ptr, i32 state-len, i32 msg-ptr, i32
// msg-len) -> i32 pointer to a result area laid out like init's.
//
//go:wasmexport theater:simple/message-server-client#handle-send
func exportHandleSend(stateIsSome, statePtr, stateLen, msgPtr, msgLen uint32) uint32 {
	return msghook.HandleSend(stateIsSome, statePtr, stateLen, msgPtr, msgLen)
}

// exportPostHandleSend is its cabi_post: (i32 the pointer it returned).
//
//go:wasmexport cabi_post_theater:simple/message-server-client#handle-send
func exportPostHandleSend(ret uint32) { msghook.PostHandleSend(ret) }

// exportHandleRequest is
// theater:simple/message-server-client#handle-request: (i32 state-is-some,
// i32 state-ptr, i32 state-len, i32 rid-ptr, i32 rid-len, i32 data-ptr,
// i32 data-len) -> i32 pointer to a 28-byte result area.
//
//go:wasmexport theater:simple/message-server-client#handle-request
func exportHandleRequest(stateIsSome, statePtr, stateLen, ridPtr, ridLen, dataPtr, dataLen uint32) uint32 {
	return msghook.HandleRequest(stateIsSome, statePtr, stateLen, ridPtr, ridLen, dataPtr, dataLen)
}

// exportPostHandleRequest is its cabi_post.
//
//go:wasmexport cabi_post_theater:simple/message-server-client#handle-request
func exportPostHandleRequest(ret uint32) { msghook.PostHandleRequest(ret) }
