package runtimehandler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/tetratelabs/wazero/api"

	"github.com/troupe-dev/troupe/internal/abi"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/limits"
	"github.com/troupe-dev/troupe/internal/traceparent"
)

// Messenger delivers the messages one actor sends (theater:simple/
// message-server-host); the engine implements it, one per actor, so it
// knows the sender. It is an interface so that this package does not
// depend on the engine. A returned error's text is what the guest's err
// result says, scrubbed of the sender's secrets.
type Messenger interface {
	// Send queues m in its target's mailbox and returns the target's
	// actor id, or why it could not.
	Send(ctx context.Context, m Outbound) (targetID string, err error)
	// Request delivers m and waits for the response within ctx's
	// deadline (the asking call's), capped by the sender's request
	// timeout.
	Request(ctx context.Context, m Outbound) (response []byte, targetID string, err error)
}

// Outbound is a message as an actor sends it.
type Outbound struct {
	// Target is what the guest named: an actor id, a name, or
	// namespace/name (valid UTF-8, at most limits.MaxTargetBytes).
	Target string
	// Msg is the sender's message, scrubbed of its secrets; the
	// messenger owns it.
	Msg []byte
	// ID identifies the message on both chains (a request's id, handed
	// to handle-request).
	ID string
	// TraceParent is the W3C trace context of the message: a child of
	// the call's own (TraceParentOf), or a new trace.
	TraceParent string
}

type traceKey struct{}

// WithTraceParent binds the trace context of the message being handled to
// the call's ctx, so that what the handler sends continues its trace.
func WithTraceParent(ctx context.Context, tp string) context.Context {
	return context.WithValue(ctx, traceKey{}, tp)
}

// TraceParentOf returns the trace context WithTraceParent bound, or "".
func TraceParentOf(ctx context.Context) string {
	tp, _ := ctx.Value(traceKey{}).(string)
	return tp
}

// messageFuncs implements theater:simple/message-server-host.
var messageFuncs = map[string]api.GoModuleFunc{
	abi.Send.Name:    hostSend,
	abi.Request.Name: hostRequest,
}

// Digest is how the chain identifies a message's bytes without holding
// them: SHA-256, hex.
func Digest(b []byte) string {
	d := sha256.Sum256(b)
	return hex.EncodeToString(d[:])
}

// outbound reads and checks the target and message of send or request.
// Lengths are checked before the bytes are read, so that a 2 GiB length is
// an err result, not a trap; a pointer outside memory traps, as the
// canonical ABI's lifting does and as every runtime function does.
// errMsg is the err result for input the host refuses.
func (c *call) outbound(idPtr, idLen, msgPtr, msgLen uint32) (m Outbound, errMsg string) {
	a := c.a
	switch {
	case idLen == 0:
		return m, "actor id is empty: name an actor id, a name or namespace/name"
	case idLen > limits.MaxTargetBytes:
		return m, "actor id is " + strconv.FormatUint(uint64(idLen), 10) + " bytes: the limit is " + strconv.Itoa(limits.MaxTargetBytes)
	case uint64(msgLen) > uint64(a.maxMessage):
		return m, "message is " + strconv.FormatUint(uint64(msgLen), 10) + " bytes: the limit is " + strconv.Itoa(a.maxMessage) + " (maxMessageBytes)"
	}
	target := c.view("actor id", idPtr, idLen)
	if !utf8.Valid(target) {
		return m, "actor id is not valid UTF-8"
	}
	msg := c.view("message", msgPtr, msgLen)
	red := a.RedactBytes(msg)
	if len(red) > a.maxMessage {
		return m, "message is " + strconv.Itoa(len(red)) + " bytes once secret values are replaced with " +
			strconv.Quote(Redacted) + ": the limit is " + strconv.Itoa(a.maxMessage) + " (maxMessageBytes)"
	}
	m.Target = string(target)
	// A copy: red may be the view of guest memory itself, and the
	// message outlives the call in the target's mailbox.
	m.Msg = append(make([]byte, 0, len(red)), red...)
	m.ID = uuid.NewString()
	m.TraceParent = traceparent.Child(TraceParentOf(c.ctx))
	return m, ""
}

// messageEvent starts the data of a sender-side event of m.
func (a *Actor) messageEvent(m *Outbound) *eventFields {
	sum := sha256.Sum256(m.Msg)
	return a.eventData().Str("id", m.ID).Str("to", a.Redact(m.Target)).
		Uint("bytes", uint64(len(m.Msg))).Hex("sha256", sum[:]).Str("traceparent", m.TraceParent)
}

// send: func(actor-id: string, msg: list<u8>) -> result<_, string>
//
//	core: (i32 id_ptr, i32 id_len, i32 msg_ptr, i32 msg_len, i32 retptr) -> ()
//	retptr: result<_, string>, size 12 align 4: discriminant u8 @0, err ptr @4, len @8
//	chain: MessageSent {"id", "to", "bytes", "sha256", "traceparent", "ok": true, "toID"}
//	  or {..., "ok": false, "error": e}; {"toBytes", "bytes", "ok": false,
//	  "error": e} for input refused before delivery
func hostSend(ctx context.Context, mod api.Module, stack []uint64) {
	c := begin(ctx, abi.Send.Name, mod)
	ip, il, mp, ml, retptr := u32(stack[0]), u32(stack[1]), u32(stack[2]), u32(stack[3]), u32(stack[4])
	c.checkRetptr(retptr, abi.ResultString)
	m, errMsg := c.outbound(ip, il, mp, ml)
	if errMsg != "" {
		c.refuseMessage(chain.KindMessageSent, retptr, il, ml, errMsg)
		return
	}
	a := c.a
	var targetID string
	var err error
	if a.messenger == nil {
		errMsg = "this host does not deliver messages"
	} else if targetID, err = a.messenger.Send(ctx, m); err != nil {
		errMsg = a.Redact(err.Error())
	}
	f := a.messageEvent(&m)
	if errMsg != "" {
		c.record(chain.KindMessageSent, f.Bool("ok", false).Str("error", errMsg))
		c.storeResultErr(retptr, errMsg)
		return
	}
	c.record(chain.KindMessageSent, f.Bool("ok", true).Str("toID", targetID))
	c.storeResultOK(retptr)
}

// request: func(actor-id: string, msg: list<u8>) -> result<list<u8>, string>
//
//	core: (i32 id_ptr, i32 id_len, i32 msg_ptr, i32 msg_len, i32 retptr) -> ()
//	retptr: result<list<u8>, string>, size 12 align 4: discriminant u8 @0,
//	  the response's or the error's ptr @4, len @8 (cabi_realloc'd, align 1)
//	chain: RequestSent {"id", "to", "bytes", "sha256", "traceparent"} before
//	  the wait, then ResponseReceived {"id", "to", "toID", "ok": true, "bytes",
//	  "sha256"} or {"id", "to", "ok": false, "error": e}; a refusal before
//	  delivery is one ResponseReceived {"toBytes", "bytes", "ok": false, "error"}
func hostRequest(ctx context.Context, mod api.Module, stack []uint64) {
	c := begin(ctx, abi.Request.Name, mod)
	ip, il, mp, ml, retptr := u32(stack[0]), u32(stack[1]), u32(stack[2]), u32(stack[3]), u32(stack[4])
	c.checkRetptr(retptr, abi.ResultBytes)
	m, errMsg := c.outbound(ip, il, mp, ml)
	if errMsg != "" {
		c.refuseMessage(chain.KindResponseReceived, retptr, il, ml, errMsg)
		return
	}
	a := c.a
	c.record(chain.KindRequestSent, a.messageEvent(&m))
	var resp []byte
	var targetID string
	var err error
	switch {
	case a.messenger == nil:
		errMsg = "this host does not deliver messages"
	default:
		if resp, targetID, err = a.messenger.Request(ctx, m); err != nil {
			errMsg = a.Redact(err.Error())
		} else if len(resp) > a.maxMessage {
			errMsg = "response is " + strconv.Itoa(len(resp)) + " bytes: the limit is " + strconv.Itoa(a.maxMessage) + " (maxMessageBytes)"
		}
	}
	f := a.eventData().Str("id", m.ID).Str("to", a.Redact(m.Target))
	if errMsg != "" {
		c.record(chain.KindResponseReceived, f.Bool("ok", false).Str("error", errMsg))
		c.storeResultErr(retptr, errMsg)
		return
	}
	sum := sha256.Sum256(resp)
	c.record(chain.KindResponseReceived, f.Str("toID", targetID).Bool("ok", true).
		Uint("bytes", uint64(len(resp))).Hex("sha256", sum[:]))
	ptr, n := c.lowerString(transient(resp))
	if !c.memory().WriteByte(retptr, 0) {
		trap(c.fn, "writing the result to the return area", nil)
	}
	c.storePair(retptr, abi.ResultPayload, ptr, n)
}

// refuseMessage records and answers input the host refused before any
// delivery. Only sizes are recorded: the target may be neither text nor
// short, and the message is not read at all.
func (c *call) refuseMessage(kind chain.Kind, retptr, idLen, msgLen uint32, errMsg string) {
	f := c.a.eventData().Uint("toBytes", uint64(idLen)).Uint("bytes", uint64(msgLen)).
		Bool("ok", false).Str("error", errMsg)
	c.record(kind, f)
	c.storeResultErr(retptr, errMsg)
}
