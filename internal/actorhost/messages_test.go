package actorhost

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/diskbudget"
	"github.com/troupe-dev/troupe/internal/limits"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
	"github.com/troupe-dev/troupe/internal/testutil"
)

// cli is the external sender of these tests.
var cli = Sender{External: "test"}

// ask builds an "a" request: ask target with rest.
func ask(target, rest string) []byte {
	return append([]byte{'a', byte(len(target))}, target+rest...)
}

// tell builds an "s" request: send rest to target.
func tell(target, rest string) []byte {
	return append([]byte{'s', byte(len(target))}, target+rest...)
}

func counterOf(t testing.TB, b []byte) uint32 {
	t.Helper()
	if len(b) != 4 {
		t.Fatalf("counter response %q is not 4 bytes", b)
	}
	return binary.LittleEndian.Uint32(b)
}

func startMessenger(t testing.TB, e *Engine, name string, cfg ActorConfig) *Actor {
	t.Helper()
	cfg.Name, cfg.Component = name, compile(t, e, "messenger")
	return start(t, e, cfg)
}

func TestSendAndRequestBetweenActors(t *testing.T) {
	e, _ := newTestEngine(t)
	ctx := context.Background()
	pong := startMessenger(t, e, "pong", ActorConfig{Dir: t.TempDir()})
	ping := startMessenger(t, e, "ping", ActorConfig{Dir: t.TempDir()})

	// External sends, then a request that ping forwards to pong: the
	// response comes back through both.
	for range 3 {
		if err := e.Send(ctx, Delivery{From: cli, Target: "pong", Msg: []byte("i")}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := e.Request(ctx, Delivery{From: cli, Target: "ping", Msg: ask("pong", "g")})
	if err != nil {
		t.Fatal(err)
	}
	// The sends were queued before the request: FIFO means they are in.
	if got := counterOf(t, resp); got != 3 {
		t.Fatalf("pong counted %d sends, want 3", got)
	}
	// ping sends to pong by id too.
	if resp, err := e.Request(ctx, Delivery{From: cli, Target: ping.ID(), Msg: tell(pong.ID(), "i")}); err != nil || string(resp) != "ok" {
		t.Fatalf("send by id: %q, %v", resp, err)
	}
	if resp, err := e.Request(ctx, Delivery{From: cli, Target: "/pong", Msg: []byte("g")}); err != nil || counterOf(t, resp) != 4 {
		t.Fatalf("by namespace/name: %v, %v", resp, err)
	}

	// Both chains record the conversation, tied by the request's id.
	var sent, received map[string]any
	for _, ev := range events(t, ping) {
		if ev.Kind == chain.KindRequestSent && sent == nil {
			_ = json.Unmarshal(ev.Data, &sent)
		}
	}
	for _, ev := range events(t, pong) {
		if ev.Kind == chain.KindRequestReceived && received == nil {
			_ = json.Unmarshal(ev.Data, &received)
		}
	}
	if sent == nil || received == nil || sent["id"] != received["id"] || sent["traceparent"] != received["traceparent"] || sent["sha256"] != received["sha256"] {
		t.Fatalf("the two sides do not match:\nping: %v\npong: %v", sent, received)
	}
	if from, _ := received["from"].(map[string]any); from["actorID"] != ping.ID() || from["name"] != "ping" {
		t.Errorf("pong records the request from %v", received["from"])
	}
	if path, _ := received["path"].([]any); len(path) != 1 || path[0] != ping.ID() {
		t.Errorf("the request's path is %v, want [ping]", received["path"])
	}
	var ext map[string]any
	for _, ev := range events(t, pong) {
		if ev.Kind == chain.KindMessageReceived {
			_ = json.Unmarshal(ev.Data, &ext)
			break
		}
	}
	if from, _ := ext["from"].(map[string]any); from["external"] != "test" {
		t.Errorf("an external send is recorded from %v", ext["from"])
	}
	ks := map[chain.Kind]int{}
	for _, ev := range events(t, pong) {
		ks[ev.Kind]++
	}
	if ks[chain.KindMessageReceived] != 4 || ks[chain.KindRequestReceived] != 2 || ks[chain.KindHandlerResult] != 6 {
		t.Errorf("pong's chain has %v", ks)
	}
	// The state survives a restart.
	dir := pong.cfg.Dir
	if err := pong.Stop(ctx, "restart"); err != nil {
		t.Fatal(err)
	}
	again := startMessenger(t, e, "pong", ActorConfig{Dir: dir})
	if resp, err := e.Request(ctx, Delivery{From: cli, Target: again.ID(), Msg: []byte("g")}); err != nil || counterOf(t, resp) != 4 {
		t.Fatalf("after a restart: %v, %v", resp, err)
	}
}

func TestDeliveryErrors(t *testing.T) {
	e, _ := newTestEngine(t)
	ctx := context.Background()
	tgt := startMessenger(t, e, "target", ActorConfig{})
	start(t, e, ActorConfig{Name: "passive", Component: compile(t, e, "counter")})
	stopped := startMessenger(t, e, "stopped", ActorConfig{})
	full := startMessenger(t, e, "full", ActorConfig{MailboxMessages: 1, CallTimeout: time.Second})
	if err := stopped.Stop(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	// Block full's mailbox: a request that loops until its call
	// deadline holds the actor, and one queued message fills it.
	blocker := make(chan error, 1)
	go func() {
		_, err := e.Request(ctx, Delivery{From: cli, Target: "full", Msg: []byte("L")})
		blocker <- err
	}()
	waitFor(t, "full to be busy", func() bool { n, _ := full.mbox.usage(); return n == 0 && len(full.callLock) == 1 })
	if err := e.Send(ctx, Delivery{From: cli, Target: "full", Msg: []byte("x")}); err != nil {
		t.Fatal(err)
	}

	tests := map[string]struct {
		request bool
		d       Delivery
		want    error
		text    string
	}{
		"no such actor":          {false, Delivery{From: cli, Target: "nobody", Msg: []byte("i")}, ErrNoSuchActor, `no such actor: "nobody"`},
		"other namespace":        {true, Delivery{From: cli, Target: "ns/target", Msg: []byte("g")}, ErrNoSuchActor, `no such actor: "ns/target"`},
		"no handle-send":         {false, Delivery{From: cli, Target: "passive", Msg: []byte("i")}, ErrNoHandler, "actor passive does not handle messages (it exports no handle-send)"},
		"no handle-request":      {true, Delivery{From: cli, Target: "passive", Msg: []byte("g")}, ErrNoHandler, "it exports no handle-request"},
		"stopped":                {false, Delivery{From: cli, Target: stopped.ID(), Msg: []byte("i")}, ErrNoSuchActor, "no such actor"},
		"too large":              {false, Delivery{From: cli, Target: "target", Msg: make([]byte, limits.DefaultMaxMessageBytes+1)}, ErrMessageTooLarge, "message is 1048577 bytes"},
		"mailbox full":           {false, Delivery{From: cli, Target: "full", Msg: []byte("i")}, ErrMailboxFull, "mailbox full: full holds 1 messages / 1 bytes"},
		"request to a full box":  {true, Delivery{From: cli, Target: "full", Msg: []byte("g")}, ErrMailboxFull, "mailbox full"},
		"no response":            {true, Delivery{From: cli, Target: "target", Msg: []byte("n")}, ErrNoResponse, "actor target gave no response"},
		"cycle through the path": {true, Delivery{From: Sender{ActorID: "a1"}, Target: "target", Msg: []byte("g"), Path: []string{tgt.ID(), "x"}}, ErrRequestCycle, "request cycle: target → x → a1 → target"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var err error
			if tc.request {
				_, err = e.Request(ctx, tc.d)
			} else {
				err = e.Send(ctx, tc.d)
			}
			if !errors.Is(err, tc.want) || !strings.Contains(fmt.Sprint(err), tc.text) {
				t.Fatalf("got %v, want %v containing %q", err, tc.want, tc.text)
			}
		})
	}
	if err := <-blocker; err == nil {
		t.Fatal("the looping request returned no error")
	}
}

func TestRequestCycleIsRefusedAtOnce(t *testing.T) {
	e, _ := newTestEngine(t)
	ctx := context.Background()
	a := startMessenger(t, e, "a", ActorConfig{CallTimeout: time.Minute, RequestTimeout: time.Minute})
	startMessenger(t, e, "b", ActorConfig{CallTimeout: time.Minute, RequestTimeout: time.Minute})
	tests := map[string]struct {
		target string
		msg    []byte
	}{
		"to oneself":           {"a", ask("a", "g")},
		"a asks b, b asks a":   {"a", ask("b", string(ask("a", "g")))},
		"three hops back to b": {"b", ask("a", string(ask("b", "g")))},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			begin := time.Now()
			resp, err := e.Request(ctx, Delivery{From: cli, Target: tc.target, Msg: tc.msg})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(resp), "request cycle: ") {
				t.Fatalf("answered %q, want the cycle refused", resp)
			}
			// Refused, not timed out: well under any timeout.
			if d := time.Since(begin); d > 30*time.Second {
				t.Fatalf("took %s", d)
			}
		})
	}
	if a.Phase() != PhaseRunning {
		t.Fatalf("a is %s after refused cycles", a.Phase())
	}
}

// TestWaitForGraph: a request from an actor whose target waits, directly
// or through others, for it is refused; the edge goes when the wait ends.
func TestWaitForGraph(t *testing.T) {
	e, _ := newTestEngine(t)
	a := startMessenger(t, e, "a", ActorConfig{})
	b := startMessenger(t, e, "b", ActorConfig{})
	c := startMessenger(t, e, "c", ActorConfig{})
	if err := e.waitFor(a, b); err != nil {
		t.Fatal(err)
	}
	if err := e.waitFor(b, c); err != nil {
		t.Fatal(err)
	}
	err := e.waitFor(c, a)
	if !errors.Is(err, ErrRequestCycle) || err.Error() != "request cycle: c → a → b → c (each waits for the next)" {
		t.Fatalf("c asking a: %v", err)
	}
	e.doneWaiting(b)
	if err := e.waitFor(c, a); err != nil {
		t.Fatalf("after b's wait ended: %v", err)
	}
}

func TestHandlerFailureFailsTheActor(t *testing.T) {
	e, _ := newTestEngine(t)
	ctx := context.Background()
	tests := map[string]struct {
		request bool
		msg     string
		reason  Reason
	}{
		"send err":        {false, "E", ReasonHandlerFailed},
		"send trap":       {false, "T", ReasonTrap},
		"request err":     {true, "E", ReasonHandlerFailed},
		"request trap":    {true, "T", ReasonTrap},
		"request loops":   {true, "L", ReasonTimeout},
		"wild pointer":    {true, "W", ReasonTrap},
		"2 GiB is an err": {true, "B", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := startMessenger(t, e, "victim-"+strings.ReplaceAll(name, " ", "-"), ActorConfig{CallTimeout: 200 * time.Millisecond})
			var err error
			var resp []byte
			if tc.request {
				resp, err = e.Request(ctx, Delivery{From: cli, Target: a.ID(), Msg: []byte(tc.msg)})
			} else {
				err = e.Send(ctx, Delivery{From: cli, Target: a.ID(), Msg: []byte(tc.msg)})
			}
			if tc.reason == "" {
				if err != nil || !strings.Contains(string(resp), "message is 2147483648 bytes") || a.Phase() != PhaseRunning {
					t.Fatalf("got %q, %v, phase %s: want the err result and a running actor", resp, err, a.Phase())
				}
				return
			}
			if tc.request {
				var he *HandlerError
				if !errors.As(err, &he) || he.Reason != tc.reason {
					t.Fatalf("the requester got %v, want a HandlerError %s", err, tc.reason)
				}
			} else if err != nil {
				t.Fatalf("send: %v", err)
			}
			<-a.Done()
			if ReasonOf(a.Err()) != tc.reason || a.Phase() != PhaseFailed {
				t.Fatalf("phase %s err %v, want Failed %s", a.Phase(), a.Err(), tc.reason)
			}
			if err := e.Send(ctx, Delivery{From: cli, Target: a.ID(), Msg: []byte("i")}); !errors.Is(err, ErrActorNotRunning) {
				t.Fatalf("a send to the failed actor: %v", err)
			}
		})
	}
}

func TestRequestTimeout(t *testing.T) {
	e, _ := newTestEngine(t)
	ctx := context.Background()
	slow := startMessenger(t, e, "slow", ActorConfig{CallTimeout: 300 * time.Millisecond})
	// The asker's own cap bounds its request to slow; the relay (whose
	// cap bounds an external request to it, and its own request to the
	// asker) waits longer.
	asker := startMessenger(t, e, "asker", ActorConfig{RequestTimeout: 100 * time.Millisecond, CallTimeout: 2 * time.Second})
	startMessenger(t, e, "relay", ActorConfig{RequestTimeout: time.Minute, CallTimeout: time.Minute})
	resp, err := e.Request(ctx, Delivery{From: cli, Target: "relay", Msg: ask("asker", string(ask("slow", "L")))})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(resp), "request to slow timed out") {
		t.Fatalf("asker answered %q, want the timeout", resp)
	}
	if asker.Phase() != PhaseRunning {
		t.Fatalf("the asker is %s", asker.Phase())
	}
	<-slow.Done()
	// An external caller's deadline: its context.
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	other := startMessenger(t, e, "other", ActorConfig{CallTimeout: 300 * time.Millisecond})
	if _, err := e.Request(short, Delivery{From: cli, Target: "other", Msg: []byte("L")}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a timeout", err)
	}
	<-other.Done()
}

// TestIdleActorsHaveNoGoroutine: an actor that ticks or waits for messages
// holds no goroutine between calls; one that only waits for messages holds
// none at all and allocates nothing while it waits.
func TestIdleActorsHaveNoGoroutine(t *testing.T) {
	t.Run("ticking", testTickingActorsHaveNoGoroutine)
	t.Run("reachable", func(t *testing.T) {
		e, _ := newTestEngine(t)
		// Durable chains, as in a host: their group commit must go quiet.
		checkIdleReachable(t, e, 100, 300*time.Millisecond, func(int) ActorConfig { return ActorConfig{Dir: t.TempDir()} })
	})
}

func testTickingActorsHaveNoGoroutine(t *testing.T) {
	e, _ := newTestEngine(t)
	tick := compile(t, e, "tick")
	msg := compile(t, e, "messenger")
	const n = 200
	baseline := runtime.NumGoroutine()
	var actors []*Actor
	for i := range n {
		actors = append(actors, start(t, e, ActorConfig{Name: fmt.Sprintf("t%d", i), Component: tick,
			InitialState: tickState('c'), TickInterval: limits.MinTickInterval}))
		actors = append(actors, start(t, e, ActorConfig{Name: fmt.Sprintf("m%d", i), Component: msg}))
	}
	for _, a := range actors[:20] {
		waitFor(t, "ticks", func() bool { return a.component != tick || a.Ticks() >= 2 })
	}
	for i := 1; i < len(actors); i += 2 {
		if err := e.Send(context.Background(), Delivery{From: cli, Target: actors[i].ID(), Msg: []byte("i")}); err != nil {
			t.Fatal(err)
		}
	}
	// 400 actors, half ticking every 100ms: at any instant a few may be in
	// a call; never one goroutine each.
	waitFor(t, "goroutines to settle", func() bool { return runtime.NumGoroutine()-baseline < 20 })
}

func TestMailboxIsFIFOAndBounded(t *testing.T) {
	e, _ := newTestEngine(t)
	ctx := context.Background()
	a := startMessenger(t, e, "flooded", ActorConfig{MailboxMessages: 64, MailboxBytes: 1 << 20})
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted, refused := 0, 0
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				err := e.Send(ctx, Delivery{From: cli, Target: "flooded", Msg: []byte("i")})
				mu.Lock()
				switch {
				case err == nil:
					accepted++
				case errors.Is(err, ErrMailboxFull):
					refused++
				default:
					t.Error(err)
				}
				mu.Unlock()
				if n, _ := a.mbox.usage(); n > 64 {
					t.Errorf("the mailbox holds %d items, over its 64", n)
				}
			}
		}()
	}
	wg.Wait()
	resp, err := e.Request(ctx, Delivery{From: cli, Target: "flooded", Msg: []byte("g")})
	for errors.Is(err, ErrMailboxFull) {
		resp, err = e.Request(ctx, Delivery{From: cli, Target: "flooded", Msg: []byte("g")})
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := counterOf(t, resp); int(got) != accepted || accepted+refused != 2000 {
		t.Fatalf("counted %d, %d accepted, %d refused", got, accepted, refused)
	}
	if a.Phase() != PhaseRunning {
		t.Fatalf("the flooded actor is %s", a.Phase())
	}
}

// TestRateLimitedByTheReceiversBudget: a receiver whose chain budget is
// spent refuses deliveries at once, and lives.
func TestRateLimitedByTheReceiversBudget(t *testing.T) {
	e, _ := newTestEngine(t)
	ctx := context.Background()
	a := startMessenger(t, e, "thrifty", ActorConfig{DiskBudget: &diskbudget.Limits{BytesPerSecond: 100, BurstBytes: 100, EventsPerSecond: 10, BurstEvents: 10}})
	var limited error
	for range 50 {
		if err := e.Send(ctx, Delivery{From: cli, Target: "thrifty", Msg: []byte("i")}); err != nil {
			limited = err
			break
		}
	}
	if !errors.Is(limited, ErrRateLimited) || !strings.HasPrefix(limited.Error(), "rate limited: thrifty: ") {
		t.Fatalf("50 sends over a 100 B/s budget: %v", limited)
	}
	if a.Phase() != PhaseRunning {
		t.Fatalf("the receiver is %s", a.Phase())
	}
}

// TestSDKActorHandlesMessages: the Go SDK's OnSend and OnRequest (the
// abiactor of sdk/theater's tests) under the real engine.
func TestSDKActorHandlesMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go actor")
	}
	e, _ := newTestEngine(t)
	ctx := context.Background()
	c, err := e.Compile(ctx, testutil.BuildActor(t, "sdk/theater/testdata/abiactor"))
	if err != nil {
		t.Fatal(err)
	}
	if send, request := c.HandlesMessages(); !send || !request {
		t.Fatalf("the SDK actor exports handle-send %v, handle-request %v", send, request)
	}
	a := start(t, e, ActorConfig{Name: "sdk", Component: c, TickInterval: -1, InitialState: []byte("s:"),
		Env: runtimehandler.MapEnv{"MODE": {Value: "echo"}}})
	for _, m := range []string{"a", "b"} {
		if err := e.Send(ctx, Delivery{From: cli, Target: "sdk", Msg: []byte(m)}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := e.Request(ctx, Delivery{From: cli, Target: "sdk", Msg: []byte("ping"), ID: "rid-1"})
	if err != nil || string(resp) != "rid-1:ping" {
		t.Fatalf("request: %q, %v", resp, err)
	}
	if got := string(a.State()); got != "s:ab" {
		t.Fatalf("state %q after two sends, want s:ab", got)
	}
	if _, err := e.Request(ctx, Delivery{From: cli, Target: "sdk", Msg: []byte("none")}); !errors.Is(err, ErrNoResponse) {
		t.Fatalf("a nil response: %v", err)
	}
	_, err = e.Request(ctx, Delivery{From: cli, Target: "sdk", Msg: []byte("fail"), ID: "rid-2"})
	var he *HandlerError
	if !errors.As(err, &he) || he.Reason != ReasonHandlerFailed || !strings.Contains(he.Message, "request handler refused rid-2") {
		t.Fatalf("a failing handler: %v", err)
	}
	<-a.Done()
	if ReasonOf(a.Err()) != ReasonHandlerFailed {
		t.Fatalf("the actor ended with %v", a.Err())
	}
}

// TestFloodedSlowReceiverKeepsMemoryFlat: senders flood a receiver that is
// stuck in a call (its call lock held) with far more than its mailbox
// holds: the mailbox's byte bound keeps the host's heap within that bound
// however much is sent, the surplus is refused at once, and once the
// receiver is free it handles every message it accepted and lives.
func TestFloodedSlowReceiverKeepsMemoryFlat(t *testing.T) {
	e, _ := newTestEngine(t)
	ctx := context.Background()
	const mailboxBytes, msgBytes = 1 << 20, 16 << 10
	a := startMessenger(t, e, "slow", ActorConfig{MailboxMessages: 1 << 16, MailboxBytes: mailboxBytes, DiskBudget: &diskbudget.Limits{}})
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	a.callLock <- struct{}{} // the receiver is busy for as long as the flood lasts
	var accepted, refused atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2000 {
				msg := make([]byte, msgBytes) // a fresh message each time, as from real senders
				msg[0] = 'i'
				switch err := e.Send(ctx, Delivery{From: cli, Target: "slow", Msg: msg}); {
				case err == nil:
					accepted.Add(1)
				case errors.Is(err, ErrMailboxFull):
					refused.Add(1)
				default:
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	// 125 MiB were sent; the mailbox holds at most 1 MiB of it. The slack
	// covers the work items, the GC's pacing and the test's own garbage.
	if grew := int64(heap()) - int64(before); grew > 4*mailboxBytes {
		t.Errorf("the heap grew by %d bytes while 125 MiB were sent to a mailbox of %d bytes", grew, mailboxBytes)
	}
	// The drain holds one message in hand while it waits for the call lock.
	if got := accepted.Load(); got > mailboxBytes/msgBytes+1 || refused.Load() == 0 {
		t.Errorf("%d messages accepted, %d refused: the mailbox holds at most %d", got, refused.Load(), mailboxBytes/msgBytes)
	}
	a.unlock()
	resp, err := e.Request(ctx, Delivery{From: cli, Target: "slow", Msg: []byte("g")})
	for errors.Is(err, ErrMailboxFull) { // until the receiver has made room
		resp, err = e.Request(ctx, Delivery{From: cli, Target: "slow", Msg: []byte("g")})
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := counterOf(t, resp); int64(got) != accepted.Load() {
		t.Fatalf("the receiver counted %d of the %d messages it accepted", got, accepted.Load())
	}
	if a.Phase() != PhaseRunning {
		t.Fatalf("the flooded receiver is %s", a.Phase())
	}
}
