package diskbudget

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func kindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

// TestAdmitWaitsWithinTheDeadline: past its burst an actor's append waits
// for its rate; one whose wait would pass the call's deadline is refused
// at once, and takes nothing.
func TestAdmitWaitsWithinTheDeadline(t *testing.T) {
	a := NewActor(Limits{BytesPerSecond: 10_000, BurstBytes: 1000}, nil, 0)
	if err := a.Admit(context.Background(), 1000); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if err := a.Admit(context.Background(), 500); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took < 45*time.Millisecond {
		t.Fatalf("an append past the burst took %s, want about 50ms (500 bytes at 10,000 B/s)", took)
	}
	// Now empty: 1000 bytes need 100ms, and the deadline is in 20ms.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := a.Admit(ctx, 1000)
	if kindOf(err) != KindRate || !strings.Contains(err.Error(), "past the call's deadline") || !strings.Contains(err.Error(), "chainBytesPerSecond 10000") {
		t.Fatalf("got %v, want a Rate refusal naming the limit", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the refusal waited for the deadline instead of failing at once")
	}
	if got := a.ChainBytes(); got != 1500 {
		t.Fatalf("the refused append was counted: %d bytes, want 1500", got)
	}
	// AdmitBy (WASI output) takes its deadline as a time.
	if err := a.AdmitBy(time.Now().Add(10*time.Millisecond), 1000); kindOf(err) != KindRate {
		t.Fatalf("AdmitBy: got %v, want a Rate refusal", err)
	}
	// The events rate works the same way.
	e := NewActor(Limits{EventsPerSecond: 10, BurstEvents: 2}, nil, 0)
	for range 2 {
		if err := e.AdmitBy(time.Now().Add(time.Millisecond), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.AdmitBy(time.Now().Add(time.Millisecond), 1); kindOf(err) != KindRate {
		t.Fatalf("third event of a burst of 2: got %v, want a Rate refusal", err)
	}
}

// TestAdmitCanceled: a wait ends with its context.
func TestAdmitCanceled(t *testing.T) {
	a := NewActor(Limits{BytesPerSecond: 1, BurstBytes: 1}, nil, 0)
	ctx, cancel := context.WithCancel(context.Background())
	_ = a.Admit(ctx, 1)
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	if err := a.Admit(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// TestSizeBudget: an append that would pass MaxChainBytes is refused with
// the sizes and the field to raise; a run that starts past it is refused
// at once; lifecycle charges are counted but never refused.
func TestSizeBudget(t *testing.T) {
	a := NewActor(Limits{MaxChainBytes: 1000}, nil, 900)
	if err := a.Admit(context.Background(), 100); err != nil {
		t.Fatal(err)
	}
	err := a.Admit(context.Background(), 1)
	if kindOf(err) != KindSize || !strings.Contains(err.Error(), "spec.limits.maxChainBytes 1000") || !strings.Contains(err.Error(), "is 1000 B") {
		t.Fatalf("got %v", err)
	}
	a.Charge(50) // ActorStop
	if got := a.ChainBytes(); got != 1050 {
		t.Fatalf("ChainBytes %d, want 1050", got)
	}
	if err := a.CheckStart(); kindOf(err) != KindSize || !strings.Contains(err.Error(), "is 1.0 KiB; it has reached its size budget") {
		t.Fatalf("CheckStart past the budget: %v", err)
	}
	if err := NewActor(Limits{MaxChainBytes: 1000}, nil, 999).CheckStart(); err != nil {
		t.Fatalf("CheckStart below the budget: %v", err)
	}
	if err := NewActor(Limits{}, nil, 1<<50).Admit(context.Background(), 1<<20); err != nil {
		t.Fatalf("MaxChainBytes 0 is no limit: %v", err)
	}
}

// TestChargeAndStateGoIntoDebt: what the host writes on the actor's
// account is never refused, and the debt it leaves is what the tick loop
// waits off (Backlog) and what the next append waits for.
func TestChargeAndStateGoIntoDebt(t *testing.T) {
	a := NewActor(Limits{BytesPerSecond: 1000, BurstBytes: 100, EventsPerSecond: 1000, BurstEvents: 1000}, nil, 0)
	if d := a.Backlog(); d != 0 {
		t.Fatalf("a new actor has a backlog of %s", d)
	}
	a.ChargeState(2100) // 2 s of debt
	if d := a.Backlog(); d < 1900*time.Millisecond || d > 2*time.Second {
		t.Fatalf("backlog %s after 2,000 bytes over the burst at 1,000 B/s, want about 2s", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := a.Admit(ctx, 1); kindOf(err) != KindRate {
		t.Fatalf("an append behind 2s of debt with 1s left: %v", err)
	}
	b := NewActor(Limits{BytesPerSecond: 1000, BurstBytes: 100}, nil, 0)
	b.Charge(1100)
	if d := b.Backlog(); d < 900*time.Millisecond {
		t.Fatalf("Charge left a backlog of %s, want about 1s", d)
	}
}

// fakeDisk is an injected free-space source.
type fakeDisk struct {
	mu          sync.Mutex
	free, total uint64
	err         error
}

func (f *fakeDisk) set(free uint64) { f.mu.Lock(); f.free = free; f.mu.Unlock() }

func (f *fakeDisk) read(string) (Space, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Space{Free: f.free, Total: f.total}, f.err
}

// TestWatermark: below the free-space watermark every append, state write
// and start is refused with the figures and the flags to change; above
// it again they go on, and Changed tells the waiters. What is written
// between two polls counts at once.
func TestWatermark(t *testing.T) {
	disk := &fakeDisk{free: 50 << 30, total: 100 << 30}
	n := NewNode(NodeLimits{MinFreeBytes: 1 << 30, MinFreePercent: 10}, NodeOptions{Dir: "/data", FreeSpace: disk.read})
	a := NewActor(Limits{}, n, 0)
	if err := a.Admit(context.Background(), 100); err != nil {
		t.Fatalf("before the first poll the watermark is off: %v", err)
	}
	if err := n.Poll(); err != nil {
		t.Fatal(err)
	}
	if err := a.Admit(context.Background(), 100); err != nil {
		t.Fatal(err)
	}
	changed := n.Changed()
	disk.set(9 << 30) // 9%: below 10% of 100 GiB (the larger of the two)
	if err := n.Poll(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("Changed was not closed when the pressure began")
	}
	for name, err := range map[string]error{
		"Admit":    a.Admit(context.Background(), 1),
		"AdmitBy":  a.AdmitBy(time.Time{}, 1),
		"Pressure": a.Pressure(),
		"node":     n.Pressure(),
	} {
		if kindOf(err) != KindPressure || !strings.Contains(err.Error(), "/data has 9.0 GiB free (9.0% of 100.0 GiB), below the host's watermark of 10.0 GiB") {
			t.Errorf("%s under pressure: %v", name, err)
		}
	}
	a.Charge(10) // a lifecycle record still goes through
	changed = n.Changed()
	disk.set(20 << 30)
	if err := n.Poll(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("Changed was not closed when the pressure ended")
	}
	if err := a.Admit(context.Background(), 1); err != nil {
		t.Fatalf("space returned: %v", err)
	}
	// 11 GiB more written before the next poll: the estimate crosses the
	// watermark at once.
	for range 11 {
		_ = a.Admit(context.Background(), 1<<30)
	}
	if kindOf(n.Pressure()) != KindPressure {
		t.Fatal("writes between polls did not count against the free space")
	}
	// A source that fails keeps the last state and says why.
	disk.mu.Lock()
	disk.err = errors.New("boom")
	disk.mu.Unlock()
	if err := n.Poll(); err == nil || !strings.Contains(err.Error(), "reading the free space of /data: boom") {
		t.Fatalf("Poll with a failing source: %v", err)
	}
	if kindOf(n.Pressure()) != KindPressure {
		t.Fatal("a failed read cleared the pressure")
	}
	// No watermark: never polled, never under pressure.
	off := NewNode(NodeLimits{}, NodeOptions{FreeSpace: func(string) (Space, error) { return Space{}, nil }})
	if err := off.Poll(); err != nil || off.Pressure() != nil {
		t.Fatalf("a node without a watermark: %v, %v", err, off.Pressure())
	}
}

// TestWatch polls until its context ends.
func TestWatch(t *testing.T) {
	disk := &fakeDisk{free: 1 << 30, total: 100 << 30}
	n := NewNode(NodeLimits{MinFreeBytes: 2 << 30}, NodeOptions{FreeSpace: disk.read})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Watch(ctx, time.Millisecond, nil); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for n.Pressure() == nil {
		if time.Now().After(deadline) {
			t.Fatal("Watch never polled")
		}
		time.Sleep(time.Millisecond)
	}
	changed := n.Changed()
	disk.set(3 << 30)
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not see the space return")
	}
	cancel()
	<-done
}

// TestNodeRateIsShared: the node-wide rate bounds the host's actors
// together, however many there are, and a wait past a call's deadline is
// refused as the node's.
func TestNodeRateIsShared(t *testing.T) {
	n := NewNode(NodeLimits{BytesPerSecond: 1000, BurstBytes: 1000}, NodeOptions{})
	a, b := NewActor(Limits{}, n, 0), NewActor(Limits{}, n, 0)
	if err := a.Admit(context.Background(), 1000); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := b.Admit(ctx, 500)
	if kindOf(err) != KindNodeRate || !strings.Contains(err.Error(), "--node-chain-bytes-per-second 1000") {
		t.Fatalf("got %v, want a NodeRate refusal", err)
	}
}

// TestNodeFairness: a flooder, throttled only by the node, appends as fast
// as the node lets it; a modest actor beside it keeps its own rate. Each
// actor holds one reservation at a time, and reservations are served in
// arrival order, so the modest one waits behind at most one of the
// flooder's.
func TestNodeFairness(t *testing.T) {
	const (
		nodeRate   = 1 << 20  // 1 MiB/s for the whole node
		floodEvent = 64 << 10 // the flooder's events: 62 ms of the node's rate each
		modest     = 1 << 10  // the modest actor's: 1 KiB every 20 ms, 50 KiB/s
		period     = 20 * time.Millisecond
		run        = 1500 * time.Millisecond
	)
	n := NewNode(NodeLimits{BytesPerSecond: nodeRate, BurstBytes: floodEvent}, NodeOptions{})
	flooder, quiet := NewActor(Limits{}, n, 0), NewActor(Limits{}, n, 0)
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	var flooded atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
			if flooder.Admit(cctx, floodEvent) == nil {
				flooded.Add(floodEvent)
			}
			ccancel()
		}
	})
	// The modest actor appends on a fixed schedule and measures how late
	// each of its appends is let through.
	begin := time.Now()
	var appended int
	var worst time.Duration
	for i := 0; ; i++ {
		due := begin.Add(time.Duration(i) * period)
		if due.After(begin.Add(run)) {
			break
		}
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := time.Now()
		err := quiet.Admit(cctx, modest)
		ccancel()
		if err != nil {
			t.Fatalf("the modest actor's append %d was refused: %v", i, err)
		}
		worst = max(worst, time.Since(start))
		appended++
	}
	elapsed := time.Since(begin)
	cancel()
	wg.Wait()
	want := int(run / period)
	t.Logf("in %s: modest actor %d appends (of %d scheduled), worst wait %s; flooder %d KiB (the node allows %d KiB)",
		elapsed.Round(time.Millisecond), appended, want, worst.Round(time.Millisecond), flooded.Load()>>10, int64(elapsed.Seconds()*nodeRate+floodEvent)>>10)
	// Its rate: every scheduled append went through, within one of the
	// flooder's reservations (62 ms) plus its own, and slack for a loaded
	// machine.
	if appended < want {
		t.Fatalf("the modest actor made %d of its %d appends", appended, want)
	}
	if worst > 400*time.Millisecond {
		t.Fatalf("the modest actor waited up to %s behind the flooder, want about one flooder event (%s)", worst, time.Second*floodEvent/nodeRate)
	}
	// The node's budget held: the two together stayed within it.
	if total, allowed := flooded.Load()+int64(appended*modest), int64(elapsed.Seconds()*nodeRate)+2*floodEvent; total > allowed {
		t.Fatalf("the node let %d bytes through in %s, its budget allows %d", total, elapsed, allowed)
	}
	if flooded.Load() < nodeRate/2 {
		t.Fatalf("the flooder got only %d bytes: the node's rate was not used", flooded.Load())
	}
}

// TestStatFS reads a real filesystem: the host's default source.
func TestStatFS(t *testing.T) {
	s, err := StatFS(t.TempDir())
	if err != nil {
		t.Skipf("statfs: %v", err)
	}
	if s.Total == 0 || s.Free > s.Total {
		t.Fatalf("statfs of a temporary directory: %+v", s)
	}
	if _, err := StatFS("/no/such/directory"); err == nil {
		t.Fatal("statfs of a missing directory succeeded")
	}
}

// TestWaited counts the time appends waited, the actor's and the node's.
func TestWaited(t *testing.T) {
	n := NewNode(NodeLimits{BytesPerSecond: 500, BurstBytes: 100}, NodeOptions{})
	a := NewActor(Limits{BytesPerSecond: 1000, BurstBytes: 100}, n, 0)
	first := time.Now()
	if err := a.Admit(context.Background(), 100); err != nil { // both empty now
		t.Fatal(err)
	}
	begin := time.Now()
	if err := a.Admit(context.Background(), 20); err != nil { // 20 ms own, then 20 ms more the node's
		t.Fatal(err)
	}
	took := time.Since(begin)
	// Both waits count, and only the time the call really spent (a loaded
	// machine oversleeps: no upper bound but the call's own duration).
	// The buckets refill from the first append on: what passed since is
	// less to wait (and 10 ms for a stall inside the call; one wait alone
	// would be at most 20 ms).
	if w, least := a.Waited(), 30*time.Millisecond-begin.Sub(first); w < least || w > took {
		t.Fatalf("Waited %s, want the %s of both waits, at most the %s the call took", w, least, took)
	}
}

// TestTryAdmit: the non-blocking check refuses at once where Admit would
// wait or refuse, and spends nothing.
func TestTryAdmit(t *testing.T) {
	a := NewActor(Limits{BytesPerSecond: 1000, BurstBytes: 100, EventsPerSecond: 1000, BurstEvents: 1000, MaxChainBytes: 10000}, nil, 0)
	for range 3 {
		if err := a.TryAdmit(50); err != nil {
			t.Fatalf("within the burst: %v", err)
		}
	}
	if b := a.ChainBytes(); b != 0 {
		t.Fatalf("TryAdmit spent: the chain counts %d bytes", b)
	}
	a.Charge(1100) // about 1s of debt
	begin := time.Now()
	if err := a.TryAdmit(1); kindOf(err) != KindRate || !strings.Contains(err.Error(), "chain budget admits") {
		t.Fatalf("in debt: %v", err)
	}
	if d := time.Since(begin); d > 100*time.Millisecond {
		t.Fatalf("TryAdmit waited %s", d)
	}
	if err := a.TryAdmit(9000); kindOf(err) != KindSize {
		t.Fatalf("past the size budget: %v", err)
	}
	unlimited := NewActor(Limits{}, nil, 0)
	unlimited.Charge(1 << 30)
	if err := unlimited.TryAdmit(1 << 20); err != nil {
		t.Fatalf("no limits: %v", err)
	}
}
