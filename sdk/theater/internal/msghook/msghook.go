package msghook

var (
	// HandleSend, HandleRequest and their post-returns implement
	// theater:simple/message-server-client; package theater sets them when
	// it initializes (wasip1).
	HandleSend        func(stateIsSome, statePtr, stateLen, msgPtr, msgLen uint32) uint32
	PostHandleSend    func(ret uint32)
	HandleRequest     func(stateIsSome, statePtr, stateLen, ridPtr, ridLen, dataPtr, dataLen uint32) uint32
	PostHandleRequest func(ret uint32)
	// Linked is set by package messages' initialization: the module
	// exports the handlers, so both must be registered.
	Linked bool
)
