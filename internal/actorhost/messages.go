package actorhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/tetratelabs/wazero/api"

	"github.com/troupe-dev/troupe/internal/abi"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
	"github.com/troupe-dev/troupe/internal/textutil"
	"github.com/troupe-dev/troupe/internal/traceparent"
)

// nameKey is the router's key of an actor's name.
func nameKey(namespace, name string) string { return namespace + "/" + name }

// register makes a reachable by id and name; a later run of the same actor
// takes the entries over. e.mu held.
func (e *Engine) register(a *Actor) {
	e.routeMu.Lock()
	defer e.routeMu.Unlock()
	e.byID[a.id] = a
	if a.cfg.Name != "" {
		e.byName[nameKey(a.cfg.Namespace, a.cfg.Name)] = a
	}
}

// unregister drops a's entries, unless a later run holds them.
func (e *Engine) unregister(a *Actor) {
	e.routeMu.Lock()
	defer e.routeMu.Unlock()
	if e.byID[a.id] == a {
		delete(e.byID, a.id)
	}
	if k := nameKey(a.cfg.Namespace, a.cfg.Name); e.byName[k] == a {
		delete(e.byName, k)
	}
}

// maxQuotedTarget is how much of a target an error message quotes.
const maxQuotedTarget = 256

// resolve finds the target: an actor id when one matches, else a name in
// the sender's namespace, or namespace/name.
func (e *Engine) resolve(from Sender, target string) (*Actor, error) {
	e.routeMu.RLock()
	a := e.byID[target]
	if a == nil {
		key := target
		if !strings.Contains(target, "/") {
			key = nameKey(from.Namespace, target)
		}
		a = e.byName[key]
	}
	e.routeMu.RUnlock()
	if a == nil {
		return nil, deliveryErr(ErrNoSuchActor, "no such actor: %q", textutil.Truncate(target, maxQuotedTarget))
	}
	return a, nil
}

// label names a in messages: its name, or its id.
func (a *Actor) label() string {
	if a.cfg.Name != "" {
		return a.cfg.Name
	}
	return a.id
}

func (a *Actor) notRunning(p Phase) error {
	return deliveryErr(ErrActorNotRunning, "actor %s is not running (%s)", a.label(), p)
}

// Send queues d's message in its target's mailbox and returns once it is
// queued (not handled). The errors are ErrNoSuchActor, ErrNoHandler,
// ErrMessageTooLarge, ErrRateLimited, ErrMailboxFull, ErrActorNotRunning
// (errors.Is), each with a message fit for the sender.
func (e *Engine) Send(ctx context.Context, d Delivery) error {
	_, err := e.send(ctx, d)
	return err
}

func (e *Engine) send(_ context.Context, d Delivery) (targetID string, err error) {
	t, err := e.resolve(d.From, d.Target)
	if err != nil {
		return "", err
	}
	if err := t.admit(workSend, d); err != nil {
		return t.id, err
	}
	return t.id, nil
}

// admit makes d's mailbox item and queues it, counting a refusal as
// received: a message that is queued is counted once handled.
func (t *Actor) admit(kind workKind, d Delivery) error {
	w, err := t.makeWork(kind, d)
	if err == nil {
		err = t.enqueue(w)
	}
	if err != nil {
		t.msgStats().received(kind.messageKind(), err)
	}
	return err
}

// makeWork checks that t handles kind and makes its item.
func (t *Actor) makeWork(kind workKind, d Delivery) (*work, error) {
	if kind == workSend && !t.component.exports[abi.HandleSend.Name] {
		return nil, deliveryErr(ErrNoHandler, "actor %s does not handle messages (it exports no handle-send)", t.label())
	}
	return t.newWork(kind, d)
}

// Request delivers d's message to its target's handle-request and waits
// for the response, within ctx's deadline capped by the target's request
// timeout (an actor's own requests are capped by its own: see
// ActorConfig.RequestTimeout). Besides Send's errors: ErrRequestCycle,
// ErrNoResponse, a *HandlerError when the handler failed, and a timeout
// that wraps context.DeadlineExceeded.
func (e *Engine) Request(ctx context.Context, d Delivery) ([]byte, error) {
	resp, _, err := e.request(ctx, d, nil)
	return resp, err
}

// request is Request; from is the asking actor (nil for an external
// caller), whose request timeout caps the wait and whose wait-for edge is
// checked for cycles.
func (e *Engine) request(ctx context.Context, d Delivery, from *Actor) (resp []byte, targetID string, err error) {
	t, err := e.resolve(d.From, d.Target)
	if err != nil {
		return nil, "", err
	}
	if !t.component.exports[abi.HandleRequest.Name] {
		err := deliveryErr(ErrNoHandler, "actor %s does not handle requests (it exports no handle-request)", t.label())
		t.msgStats().received(KindRequest, err)
		return nil, t.id, err
	}
	// The causal path: the actors whose requests this one continues, and
	// the sender; asking any of them again could only wait for itself.
	path := d.Path
	if d.From.ActorID != "" {
		path = append(slices.Clip(path), d.From.ActorID)
	}
	if slices.Contains(path, t.id) {
		err := deliveryErr(ErrRequestCycle, "request cycle: %s", e.describePath(append(slices.Clip(path), t.id)))
		t.msgStats().received(KindRequest, err)
		return nil, t.id, err
	}
	limit := t.requestTimeout
	if from != nil {
		limit = from.requestTimeout
	}
	// The wait ends at ctx's deadline or after limit, whichever is
	// first: a timer from a pool, rather than a context derived per
	// request (a timer, a channel and three allocations more).
	start := time.Now()
	deadline := start.Add(limit)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	d.Path = path
	w, err := t.newWork(workRequest, d)
	if err != nil {
		t.msgStats().received(KindRequest, err)
		return nil, t.id, err
	}
	reply := getReplyChan()
	w.reply, w.deadline = reply, deadline
	// Queued now, for the delivery time: start is close enough, and read
	// already.
	w.queuedAt = start.Sub(monoBase)
	if from != nil {
		if err := e.waitFor(from, t); err != nil {
			t.msgStats().received(KindRequest, err)
			return nil, t.id, err
		}
		defer e.doneWaiting(from)
	}
	if err := t.enqueue(w); err != nil {
		putReplyChan(reply) // never queued: nobody answers on it
		t.msgStats().received(KindRequest, err)
		return nil, t.id, err
	}
	timer := getTimer(time.Until(deadline))
	defer putTimer(timer)
	select {
	case r := <-reply:
		// The one answer taken, the channel is empty and no one else
		// holds it (answer cleared w.reply): it can serve again.
		putReplyChan(reply)
		return r.resp, t.id, r.err
	case <-timer.C:
		return nil, t.id, requestTimeout(t, start, limit)
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, t.id, requestTimeout(t, start, limit)
		}
		return nil, t.id, fmt.Errorf("request to %s canceled: %w", t.label(), ctx.Err())
	}
}

func requestTimeout(t *Actor, start time.Time, limit time.Duration) error {
	return timeoutErr("request to %s timed out: no response within %s (the request timeout is %s)",
		t.label(), time.Since(start).Round(time.Millisecond), limit)
}

// replyChans and timers are reused by requests: a reply channel once its
// one answer was taken, a timer once stopped (Go 1.23 timers: a stopped
// timer's channel holds nothing stale, and Reset needs no drain).
var (
	replyChans = sync.Pool{New: func() any { return make(chan reply, 1) }}
	timers     = sync.Pool{}
)

func getReplyChan() chan reply  { return replyChans.Get().(chan reply) }
func putReplyChan(c chan reply) { replyChans.Put(c) }

func getTimer(d time.Duration) *time.Timer {
	if t, _ := timers.Get().(*time.Timer); t != nil {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

func putTimer(t *time.Timer) {
	t.Stop()
	timers.Put(t)
}

// describePath spells a causal path with the actors' names.
func (e *Engine) describePath(ids []string) string {
	names := make([]string, len(ids))
	e.routeMu.RLock()
	for i, id := range ids {
		names[i] = id
		if a := e.byID[id]; a != nil {
			names[i] = a.label()
		}
	}
	e.routeMu.RUnlock()
	return strings.Join(names, " → ")
}

// waitFor records that from's call waits for t, unless t already waits,
// directly or through others, for from: then the request could never be
// answered (from's mailbox is held by the call that would wait) and is
// refused at once.
func (e *Engine) waitFor(from, t *Actor) error {
	e.waitMu.Lock()
	defer e.waitMu.Unlock()
	chain := []string{from.label()}
	for x := t; x != nil; x = x.waitingFor {
		chain = append(chain, x.label())
		if x == from {
			return deliveryErr(ErrRequestCycle, "request cycle: %s (each waits for the next)", strings.Join(chain, " → "))
		}
		if len(chain) > maxWaitChain { // unreachable: the graph is kept acyclic
			break
		}
	}
	from.waitingFor = t
	return nil
}

// maxWaitChain bounds the walk of the wait-for graph, which waitFor keeps
// free of cycles, so that a bug cannot hang the sender.
const maxWaitChain = 1 << 16

func (e *Engine) doneWaiting(from *Actor) {
	e.waitMu.Lock()
	from.waitingFor = nil
	e.waitMu.Unlock()
}

// newWork checks d against t's bounds and makes its mailbox item.
func (t *Actor) newWork(kind workKind, d Delivery) (*work, error) {
	if len(d.Msg) > t.maxMessage {
		return nil, deliveryErr(ErrMessageTooLarge, "message is %d bytes: %s takes at most %d (maxMessageBytes)", len(d.Msg), t.label(), t.maxMessage)
	}
	w := &work{kind: kind, from: d.From, id: d.ID, msg: d.Msg, traceParent: d.TraceParent, path: d.Path}
	if w.id == "" {
		w.id = uuid.NewString()
	}
	if !traceparent.Valid(w.traceParent) {
		w.traceParent = traceparent.New()
	}
	return w, nil
}

// deliveryRecordBytes is about what a delivery appends to its receiver's
// chain (MessageReceived or RequestReceived, then HandlerResult: ids,
// digests, the trace; never the message itself), which its chain budget
// must admit before the message is queued.
const deliveryRecordBytes = 1024

// enqueue admits w into t's mailbox: first against t's chain budget, so
// that traffic the receiver could not record is refused at once (traffic
// can slow a receiver, never fail it), then against the mailbox's bound.
func (t *Actor) enqueue(w *work) error {
	if w.queuedAt == 0 && t.e.opts.MessageTimings != nil {
		w.queuedAt = monoNow()
	}
	if err := t.budget.TryAdmit(deliveryRecordBytes); err != nil {
		return deliveryErr(ErrRateLimited, "rate limited: %s: %s", t.label(), err.Error())
	}
	full, closed := t.mbox.push(w)
	switch {
	case closed:
		return t.notRunning(t.Phase())
	case full:
		n, b := t.mbox.usage()
		return deliveryErr(ErrMailboxFull, "mailbox full: %s holds %d messages / %d bytes (the limits are %d / %d)", t.label(), n, b, t.mbox.maxItems, t.mbox.maxBytes)
	}
	return nil
}

// drain handles the mailbox's items in order until it is empty; it runs on
// a goroutine of the engine's drainPool, started by the push that found no
// drain running.
func (a *Actor) drain() {
	for w := a.mbox.pop(); w != nil; w = a.mbox.pop() {
		switch w.kind {
		case workTick:
			if more, _ := a.tick(context.Background(), a.done); more {
				a.armTick()
			}
		default:
			a.handleMessage(w)
		}
	}
}

// handleMessage hands w to the actor's handler under the call lock. A
// failure of the handler fails the actor, like a failed tick; the
// requester gets a *HandlerError.
func (a *Actor) handleMessage(w *work) {
	select {
	case a.callLock <- struct{}{}:
	case <-a.done:
		a.answerLeft(w, a.notRunning(a.Phase()))
		return
	}
	defer a.unlock()
	if p := a.Phase(); p != PhaseRunning {
		a.answerLeft(w, a.notRunning(p))
		return
	}
	var began time.Duration // monotonic, since monoBase
	if w.kind == workRequest && !w.deadline.IsZero() {
		now := time.Now()
		if !now.Before(w.deadline) {
			// The requester has given up; the handler is not called.
			a.answerLeft(w, timeoutErr("request to %s timed out in its mailbox", a.label()))
			return
		}
		began = now.Sub(monoBase)
	}
	timings := a.e.opts.MessageTimings
	if timings != nil && began == 0 {
		began = monoNow()
	}
	resp, err := a.callHandler(w)
	if timings != nil {
		timings.ObserveMessage(w.kind.messageKind(), began-w.queuedAt, monoNow()-began)
	}
	// A handler that failed, even by running out of its call's time, is
	// the receiver's error; a request answered with nothing too.
	result := ResultOK
	if err != nil || (w.kind == workRequest && resp == nil) {
		result = ResultError
	}
	a.msgStats().in[w.kind.messageKind()][result].Add(1)
	if err != nil {
		ae := knownError("", a.fail(err))
		he := &HandlerError{Target: a.id, Op: "handle-request"}
		if w.kind == workSend {
			he.Op = "handle-send"
		}
		if ae != nil {
			he.Reason, he.Message = ae.Reason, a.handler.Redact(ae.Message)
		} else {
			he.Reason, he.Message = ReasonHostError, a.handler.Redact(err.Error())
		}
		w.answer(nil, he)
		return
	}
	if w.kind == workRequest {
		if resp == nil {
			w.answer(nil, deliveryErr(ErrNoResponse, "actor %s gave no response to the request", a.label()))
		} else {
			w.answer(resp, nil)
		}
	}
	if a.shutdownRequested() {
		_ = a.finishShutdown()
	}
}

// answerLeft answers an item the actor will not handle (it has ended, or
// the request's time ran out in the mailbox) with err, and counts it.
func (a *Actor) answerLeft(w *work, err error) {
	if w.kind == workTick {
		return
	}
	a.msgStats().received(w.kind.messageKind(), err)
	w.answer(nil, err)
}

// discardStats counts the messages of actors run without
// ActorConfig.Stats.
var discardStats MessageStats

// msgStats is where the actor's messages are counted.
func (a *Actor) msgStats() *MessageStats {
	if s := a.cfg.Stats; s != nil {
		return s
	}
	return &discardStats
}

// messageData is the data of MessageReceived and RequestReceived events,
// encoded by its appendJSON (eventjson.go).
type messageData struct {
	ID    string `json:"id"`
	From  Sender `json:"from"`
	Bytes int    `json:"bytes"`
	// Sha256 is the message's digest; appendJSON computes it from msg
	// when it is "".
	Sha256      string   `json:"sha256"`
	TraceParent string   `json:"traceparent"`
	Path        []string `json:"path,omitempty"`
	msg         []byte
}

// handlerResultData is the data of a HandlerResult event.
type handlerResultData struct {
	ID    string `json:"id"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// The state after the call (before it, for a failed one).
	stateRecord
	StateChanged bool `json:"stateChanged"`
	// A request's response.
	HasResponse   *bool `json:"hasResponse,omitempty"`
	ResponseBytes *int  `json:"responseBytes,omitempty"`
	// ResponseSha256 is the response's digest; appendJSON computes it
	// from response when it is "" and response is not nil.
	ResponseSha256 string `json:"responseSha256,omitempty"`
	response       []byte
}

type pathKey struct{}

// requestPath is the causal path of the request the current call handles
// (nil outside one), for the requests it makes in turn.
func requestPath(ctx context.Context) []string {
	p, _ := ctx.Value(pathKey{}).([]string)
	return p
}

// bindHandler binds x (and cabi_realloc, which lowers its arguments) on
// first use; called with the call lock held.
func (a *Actor) bindHandler(sc *stateCall, x *stateExport) error {
	if sc.fn != nil {
		return nil
	}
	export := func(e abi.Export) (fnc api.Function, err error) {
		if !a.component.exports[e.Name] {
			return nil, nil
		}
		if fnc = a.mod.ExportedFunction(e.Name); fnc == nil {
			return nil, newActorError(ReasonMissingExport, x.op, "instance lacks %s", e.Name)
		}
		return fnc, nil
	}
	if a.realloc == nil {
		fn, err := export(abi.Realloc)
		if err != nil {
			return err
		}
		a.realloc = fn
	}
	bound, err := bindStateCall(export, x)
	if err != nil {
		return err
	}
	if bound.fn == nil {
		return newActorError(ReasonMissingExport, x.op, "actor does not export %s", x.export.Name)
	}
	*sc = bound
	return nil
}

// callHandler records the message's arrival, calls handle-send or
// handle-request with the state, the (request id and) message, keeps the
// new state and records the result. It returns the request's response (nil
// for none) scrubbed of the actor's secrets; an error is the reason the
// actor fails. Called with the call lock held.
func (a *Actor) callHandler(w *work) (resp []byte, err error) {
	sc, x, kind := &a.sendCall, sendExport, chain.KindMessageReceived
	if w.kind == workRequest {
		sc, x, kind = &a.requestCall, requestExport, chain.KindRequestReceived
	}
	if err := a.bindHandler(sc, x); err != nil {
		return nil, err
	}
	md := messageData{ID: w.id, From: w.from, Bytes: len(w.msg), msg: w.msg, TraceParent: w.traceParent}
	if w.kind == workRequest {
		md.Path = w.path
	}
	a.eventBuf = md.appendJSON(a.eventBuf[:0])
	if err := a.recordEventBuf(kind, x.op, nil); err != nil {
		return nil, hostError(x.op, err)
	}
	ctx := runtimehandler.WithTraceParent(context.Background(), w.traceParent)
	if w.kind == workRequest {
		ctx = context.WithValue(ctx, pathKey{}, w.path)
	}
	out, err := a.invokeHandler(ctx, sc, w)
	if err != nil {
		return nil, err
	}
	d := handlerResultData{ID: w.id}
	if !out.ok {
		d.Error, d.stateRecord = out.errMsg, a.stateRecord()
		a.eventBuf = d.appendJSON(a.eventBuf[:0])
		_ = a.recordEventBuf(chain.KindHandlerResult, x.op, nil)
		return nil, sc.refused(out.errMsg)
	}
	changed := out.hasState != a.state.hasState || !bytes.Equal(out.state, a.state.state)
	if changed {
		if err := a.setState(x.op, out.saved()); err != nil {
			return nil, err
		}
	}
	d.OK, d.StateChanged, d.stateRecord = true, changed, a.stateRecord()
	if w.kind == workRequest {
		has := out.hasResponse
		d.HasResponse = &has
		if has {
			resp = a.handler.RedactBytes(out.response)
			if resp == nil {
				resp = []byte{}
			}
			n := len(resp)
			d.ResponseBytes, d.response = &n, resp
		}
	}
	a.eventBuf = d.appendJSON(a.eventBuf[:0])
	if err := a.recordEventBuf(chain.KindHandlerResult, x.op, a.stateNote(changed)); err != nil {
		return nil, hostError(x.op, err)
	}
	return resp, nil
}

// invokeHandler lowers w's (request id and) message and calls the handler
// with them, all one call into the guest (beginCall).
func (a *Actor) invokeHandler(ctx context.Context, sc *stateCall, w *work) (out stateResult, err error) {
	ctx, began := a.beginCall(ctx)
	defer a.endCall(began)
	var args [4]uint64
	n := 0
	if w.kind == workRequest {
		ridPtr, err := a.lower(ctx, "request id", []byte(w.id))
		if err != nil {
			return out, wrapOp(err, abi.Realloc.Name)
		}
		args[0], args[1], n = uint64(ridPtr), uint64(len(w.id)), 2
	}
	msgPtr, err := a.lower(ctx, "message", w.msg)
	if err != nil {
		return out, wrapOp(err, abi.Realloc.Name)
	}
	args[n], args[n+1] = uint64(msgPtr), uint64(len(w.msg))
	return a.callState(ctx, sc, args[:n+2]...)
}

// actorMessenger delivers what one actor sends: the runtime handler's
// Messenger, with the actor as the sender.
type actorMessenger struct{ a *Actor }

func (m actorMessenger) delivery(ctx context.Context, o runtimehandler.Outbound) Delivery {
	a := m.a
	return Delivery{
		From:   Sender{ActorID: a.id, Namespace: a.cfg.Namespace, Name: a.cfg.Name},
		Target: o.Target, Msg: o.Msg, ID: o.ID, TraceParent: o.TraceParent,
		Path: requestPath(ctx),
	}
}

func (m actorMessenger) Send(ctx context.Context, o runtimehandler.Outbound) (string, error) {
	d := m.delivery(ctx, o)
	id, err := m.a.e.send(ctx, d)
	if m.remote(id, err) {
		_, id, err = m.deliverRemote(ctx, KindSend, d)
	}
	m.a.msgStats().sent(KindSend, err)
	return id, err
}

func (m actorMessenger) Request(ctx context.Context, o runtimehandler.Outbound) ([]byte, string, error) {
	d := m.delivery(ctx, o)
	resp, id, err := m.a.e.request(ctx, d, m.a)
	if m.remote(id, err) {
		resp, id, err = m.deliverRemote(ctx, KindRequest, d)
	}
	m.a.msgStats().sent(KindRequest, err)
	return resp, id, err
}

// Remote delivers the messages of an engine's actors to targets that run
// elsewhere (internal/host: on another host, over the peer transport).
type Remote interface {
	// Deliver delivers d (From is the sending actor; a request's Path
	// ends with it) and returns a request's response and the target's
	// actor id. Its errors are the engine's kinds (errors.Is), the
	// transport's own besides.
	Deliver(ctx context.Context, kind MessageKind, d Delivery) (resp []byte, targetID string, err error)
}

// remote reports whether a local delivery found no target here (id "",
// ErrNoSuchActor) and a Remote may find it elsewhere.
func (m actorMessenger) remote(id string, err error) bool {
	return id == "" && m.a.e.opts.Remote != nil && errors.Is(err, ErrNoSuchActor)
}

// deliverRemote hands d to the engine's Remote: with an id fixed now (a
// retry by the transport keeps it, and both chains name it) and the
// sender's request timeout as the bound of a request. A request's Path
// and From travel as they are: the receiving engine extends the path
// with the sender, as for a local request, and refuses a cycle at once.
// The wait-for graph (waitFor) sees local waits only: two actors on
// different hosts that ask each other from outside a request (ticks)
// wait until their request timeouts.
func (m actorMessenger) deliverRemote(ctx context.Context, kind MessageKind, d Delivery) ([]byte, string, error) {
	a := m.a
	if d.ID == "" {
		d.ID = uuid.NewString()
	}
	if !traceparent.Valid(d.TraceParent) {
		d.TraceParent = traceparent.New()
	}
	if kind == KindRequest {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.requestTimeout)
		defer cancel()
	}
	return a.e.opts.Remote.Deliver(ctx, kind, d)
}
