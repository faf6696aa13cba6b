// Package messages links the exports of theater:simple/message-server-client
// (handle-send, handle-request; wit/theater-message.wit) into an actor:
//
//	import _ "github.com/troupe-dev/troupe/sdk/theater/messages"
//
// with theater.OnSend and theater.OnRequest registered from a package init
// function. Actors that don't import it export no handler, and the host
// refuses messages to them with a clear error to the sender.
package messages
