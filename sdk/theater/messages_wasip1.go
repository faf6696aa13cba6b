//go:build wasip1

package theater

import (
	"strings"
	"unsafe"

	"github.com/troupe-dev/troupe/sdk/theater/internal/msghook"
)

// Results of the last handler calls, kept reachable until their
// post-return.
var (
	sendResult    initResultArea
	sendKeep      []byte
	requestResult requestResultArea
	requestKeep   [2][]byte
)

// The handler exports are declared by package messages, so that only
// actors that handle messages have them; they call these through msghook.
func init() {
	msghook.HandleSend = exportHandleSend
	msghook.PostHandleSend = exportPostHandleSend
	msghook.HandleRequest = exportHandleRequest
	msghook.PostHandleRequest = exportPostHandleRequest
}

// claimState takes the state the host lowered, by its option.
func claimState(fn string, isSome, ptr, n uint32) []byte {
	switch isSome {
	case 0:
		return nil
	case 1:
		return claim(ptr, n)
	default:
		panic("theater: " + fn + ": invalid option discriminant for state")
	}
}

func exportHandleSend(stateIsSome, statePtr, stateLen, msgPtr, msgLen uint32) uint32 {
	sendKeep = nil
	state := claimState("handle-send", stateIsSome, statePtr, stateLen)
	msg := claim(msgPtr, msgLen)
	releasePins(0)
	newState, err := callSend(state, stateIsSome == 1, msg)
	sendKeep = storeResult(&sendResult, newState, err)
	return uint32(uintptr(unsafe.Pointer(&sendResult)))
}

func exportPostHandleSend(uint32) {
	sendKeep = nil
	sendResult = initResultArea{}
	releasePins(0)
}

func exportHandleRequest(stateIsSome, statePtr, stateLen, ridPtr, ridLen, dataPtr, dataLen uint32) uint32 {
	requestKeep = [2][]byte{}
	state := claimState("handle-request", stateIsSome, statePtr, stateLen)
	rid := claimString(ridPtr, ridLen)
	data := claim(dataPtr, dataLen)
	releasePins(0)
	newState, response, err := callRequest(state, stateIsSome == 1, rid, data)
	a := &requestResult
	switch {
	case err != nil:
		msg := []byte(strings.ToValidUTF8(err.Error(), "\uFFFD"))
		*a = requestResultArea{isErr: 1, payload: [6]uint32{addrOf(msg), uint32(len(msg))}}
		requestKeep[0] = msg
	default:
		*a = requestResultArea{}
		if newState != nil {
			a.payload[0], a.payload[1], a.payload[2] = 1, addrOf(newState), uint32(len(newState))
		}
		if response != nil {
			a.payload[3], a.payload[4], a.payload[5] = 1, addrOf(response), uint32(len(response))
		}
		requestKeep = [2][]byte{newState, response}
	}
	return uint32(uintptr(unsafe.Pointer(&requestResult)))
}

func exportPostHandleRequest(uint32) {
	requestKeep = [2][]byte{}
	requestResult = requestResultArea{}
	releasePins(0)
}
