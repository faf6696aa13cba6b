package actorhost

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/diskbudget"
	"github.com/troupe-dev/troupe/internal/limits"
)

// floodState is flood.wat's state: the flood's mode and how many calls a
// tick makes.
func floodState(mode byte, calls uint32) []byte {
	s := make([]byte, 16)
	s[0] = mode
	binary.LittleEndian.PutUint32(s[4:], calls)
	return s
}

// floodFor is how long each flood runs: 3s, or TROUPE_FLOOD_SECONDS (15
// gives the figures of docs/performance.md).
func floodFor(t *testing.T) time.Duration {
	if v := os.Getenv("TROUPE_FLOOD_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("TROUPE_FLOOD_SECONDS=%q: %v", v, err)
		}
		return time.Duration(n) * time.Second
	}
	return 3 * time.Second
}

// TestDiskFloodsAreBounded reproduces the floods of issue 10 at the
// shortest tick interval, with the default limits, on a durable chain:
// each must write no more than the actor's budget allows (its burst, its
// rate for the time it ran and one write larger than the burst), either
// throttled or failed with the reason that says so. Before the budget the
// log flood wrote ~200 MB/s, the 1 MiB record-events 150 MB/s and the
// 16 MiB state 230 MB/s, with no end.
func TestDiskFloodsAreBounded(t *testing.T) {
	e, _ := newTestEngine(t)
	comp := compile(t, e, "flood")
	big := make([]byte, limits.DefaultMaxStateBytes)
	big[0] = 'S'
	tests := map[string]struct {
		state []byte
		// largest is the largest single write of the flood.
		largest int64
		// fails is the reason the flood ends with; "" when it is only
		// throttled and runs until stopped.
		fails Reason
		// oks: the guest counts its ok results, which the chain must all hold.
		oks chain.Kind
	}{
		"log 2000 x 16 KiB a tick":        {floodState('L', 2000), 16<<10 + record, ReasonChainRateLimit, chain.KindLog},
		"log 150 x 16 KiB a tick":         {floodState('L', 150), 16<<10 + record, "", chain.KindLog},
		"record-event 1 MiB, 10 a tick":   {floodState('E', 10), 1400 << 10, ReasonChainRateLimit, chain.KindCustom},
		"get-current-time 50,000 a tick":  {floodState('T', 50000), record, ReasonChainRateLimit, ""},
		"16 MiB state changed every tick": {big, int64(len(big)), "", ""},
	}
	// The bound: whatever a flood does, what the budget lets it
	// write in 15 s stays under 256 MiB. Each flood below runs for a few
	// seconds and must stay within floodAllowed for the time it ran: the
	// bound holds by rate x time, without running 15 s.
	for name, tc := range tests {
		if at15 := floodAllowed(15*time.Second, tc.largest); at15 >= 256<<20 {
			t.Fatalf("%s: the default budget lets a flood write %d MiB in 15 s, the issue's bound is 256 MiB", name, at15>>20)
		}
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := floodFor(t)
			dir := t.TempDir()
			begin := time.Now()
			a, err := e.Start(context.Background(), ActorConfig{Name: "flood", Component: comp, Dir: dir,
				TickInterval: limits.MinTickInterval, InitialState: tc.state})
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-a.Done():
			case <-time.After(d):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := a.Stop(ctx, "flood over"); err != nil {
				t.Fatal(err)
			}
			ran := time.Since(begin)
			written, oks := floodWritten(t, dir, tc.oks)
			allowed := floodAllowed(ran, tc.largest)
			t.Logf("%s: %.1f MiB written in %s (the budget allows %.1f MiB), ended %s %v",
				name, float64(written)/(1<<20), ran.Round(time.Millisecond), float64(allowed)/(1<<20), a.Phase(), a.Err())
			if written > allowed {
				t.Fatalf("the flood wrote %d bytes in %s: the actor's budget allows %d", written, ran, allowed)
			}
			if got := ReasonOf(a.Err()); got != tc.fails {
				t.Fatalf("the flood ended with %q (%v), want %q", got, a.Err(), tc.fails)
			}
			if tc.fails == "" && (a.Ticks() < 1 || a.Phase() != PhaseStopped) {
				t.Fatalf("a throttled flood made %d ticks and ended %s, want it to go on, slower, until stopped", a.Ticks(), a.Phase())
			}
			if tc.oks != "" && tc.fails == "" {
				st := a.State()
				if want := binary.LittleEndian.Uint32(st[12:]); oks != int(want) {
					t.Fatalf("the guest was told %d calls succeeded; the chain holds %d", want, oks)
				}
			}
		})
	}
}

// record bounds an event's framing, op and JSON keys, generously.
const record = 400

// floodAllowed is what the default disk budget lets an actor write in d
// when its largest single write is largest: the burst, the rate for d, one
// write past the burst (it waits for a full bucket, then leaves it in
// debt), and 1 MiB for the engine's own records, charged without waiting.
func floodAllowed(d time.Duration, largest int64) int64 {
	return int64(limits.DefaultChainBurstBytes) + int64(d.Seconds()*limits.DefaultChainBytesPerSecond) + largest + 1<<20
}

// floodWritten returns what the actor in dir wrote: its chain and every
// state it saved (the chain's InitResult and ActorTick events give their
// sizes); and how many ok events of kind oks the chain holds.
func floodWritten(t *testing.T, dir string, oks chain.Kind) (written int64, n int) {
	t.Helper()
	st, err := os.Stat(actordir.ChainPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	written = st.Size()
	err = chain.ReadFile(actordir.ChainPath(dir), func(ev chain.Event) error {
		var d struct {
			Changed *bool  `json:"stateChanged"`
			Bytes   *int64 `json:"stateBytes"`
			OK      *bool  `json:"ok"`
			Error   string `json:"error"`
		}
		_ = json.Unmarshal(ev.Data, &d)
		switch {
		case ev.Kind == chain.KindInitResult && d.Bytes != nil,
			ev.Kind == chain.KindTick && d.Changed != nil && *d.Changed && d.Bytes != nil:
			written += *d.Bytes
		case ev.Kind == oks && d.Error == "":
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return written, n
}

// TestChainSizeBudget: an actor whose chain reaches its size budget fails
// with ChainSizeLimit, saying so in its chain; its next run ends at once,
// with nothing but the records of why.
func TestChainSizeBudget(t *testing.T) {
	e, _ := newTestEngine(t)
	comp := compile(t, e, "flood")
	dir := t.TempDir()
	budget := diskbudget.DefaultLimits()
	budget.MaxChainBytes = 1 << 20
	cfg := ActorConfig{Name: "flood", Component: comp, Dir: dir, TickInterval: limits.MinTickInterval,
		InitialState: floodState('L', 20), DiskBudget: &budget}
	a, err := e.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the actor to fail", func() bool { return a.Phase() == PhaseFailed })
	if ReasonOf(a.Err()) != ReasonChainSizeLimit || !strings.Contains(a.Err().Error(), "log: the actor's chain on this node is") ||
		!strings.Contains(a.Err().Error(), "spec.limits.maxChainBytes 1048576") {
		t.Fatalf("got %v, want ChainSizeLimit", a.Err())
	}
	if err := a.Stop(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(actordir.ChainPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > budget.MaxChainBytes+4<<10 {
		t.Fatalf("the chain is %d bytes, past its budget of %d by more than its stop record", st.Size(), budget.MaxChainBytes)
	}
	// The next run fails the same way at its first append.
	a = start(t, e, cfg)
	waitFor(t, "the next run to fail", func() bool { return a.Phase() == PhaseFailed })
	if ReasonOf(a.Err()) != ReasonChainSizeLimit {
		t.Fatalf("the next run: %v, want ChainSizeLimit", a.Err())
	}
	if err := a.Stop(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	// A chain already at its budget (lowered since): the run is refused
	// at once, and the chain says why.
	budget.MaxChainBytes = 512 << 10
	a, err = e.Start(context.Background(), cfg)
	if ReasonOf(err) != ReasonChainSizeLimit || !strings.Contains(err.Error(), "it has reached its size budget") {
		t.Fatalf("a start past the size budget: %v", err)
	}
	if err := a.Stop(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	evs := fileEvents(t, dir)
	last := evs[len(evs)-1]
	// ActorStart, ActorRestart (it resumes from its saved state), ActorStop.
	if last.Kind != chain.KindActorStop || !strings.Contains(string(last.Data), `"reason":"ChainSizeLimit"`) || evs[len(evs)-3].Kind != chain.KindActorStart {
		t.Fatalf("the refused run's chain ends %s %s, want ActorStart, ActorRestart then ActorStop with reason ChainSizeLimit", evs[len(evs)-3].Kind, last.Data)
	}
}

// TestDiskPressure: below the node's free-space watermark a running
// actor's next append fails it with DiskPressure (recorded), and no actor
// starts; once space returns they start again.
func TestDiskPressure(t *testing.T) {
	var free atomic.Uint64
	free.Store(50 << 30)
	node := diskbudget.NewNode(diskbudget.NodeLimits{MinFreeBytes: 1 << 30}, diskbudget.NodeOptions{Dir: "/data",
		FreeSpace: func(string) (diskbudget.Space, error) {
			return diskbudget.Space{Free: free.Load(), Total: 100 << 30}, nil
		}})
	if err := node.Poll(); err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(context.Background(), EngineOptions{NoDiskCache: true, SystemInfo: fixedSystemInfo{}, Version: "test", DiskBudget: node})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	comp := compile(t, e, "flood")
	dir := t.TempDir()
	cfg := ActorConfig{Name: "flood", Component: comp, Dir: dir, TickInterval: limits.MinTickInterval, InitialState: floodState('T', 1)}
	a := start(t, e, cfg)
	waitFor(t, "a tick", func() bool { return a.Ticks() > 0 })
	free.Store(512 << 20)
	if err := node.Poll(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the actor to fail", func() bool { return a.Phase() == PhaseFailed })
	if ReasonOf(a.Err()) != ReasonDiskPressure || !strings.Contains(a.Err().Error(), "/data has 512.0 MiB free") {
		t.Fatalf("got %v, want DiskPressure", a.Err())
	}
	if err := a.Stop(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	evs := fileEvents(t, dir)
	if last := evs[len(evs)-1]; last.Kind != chain.KindActorStop || !strings.Contains(string(last.Data), `"reason":"DiskPressure"`) {
		t.Fatalf("the chain ends %s %s, want ActorStop with reason DiskPressure", last.Kind, last.Data)
	}
	b, err := e.Start(context.Background(), cfg)
	if ReasonOf(err) != ReasonDiskPressure {
		t.Fatalf("a start under disk pressure: %v", err)
	}
	_ = b.Stop(context.Background(), "test")
	free.Store(50 << 30)
	if err := node.Poll(); err != nil {
		t.Fatal(err)
	}
	c := start(t, e, cfg)
	waitFor(t, "a tick once space returned", func() bool { return c.Ticks() > 0 })
}

// TestBudgetTimeout: a timeout is the disk budget's when the call spent
// most of its deadline waiting for it, and stays a timeout otherwise.
func TestBudgetTimeout(t *testing.T) {
	timeout := &ActorError{Reason: ReasonTimeout, Op: "tick", Message: "call exceeded its 5s deadline"}
	l := diskbudget.DefaultLimits()
	for name, tc := range map[string]struct {
		err    error
		waited time.Duration
		want   Reason
	}{
		"mostly waiting":         {timeout, 4 * time.Second, ReasonChainRateLimit},
		"half waiting":           {timeout, 2500 * time.Millisecond, ReasonChainRateLimit},
		"a slow guest":           {timeout, time.Second, ReasonTimeout},
		"not a timeout":          {&ActorError{Reason: ReasonTrap, Op: "tick"}, 5 * time.Second, ReasonTrap},
		"a budget refusal stays": {&ActorError{Reason: ReasonChainRateLimit, Op: "tick"}, 0, ReasonChainRateLimit},
	} {
		t.Run(name, func(t *testing.T) {
			err := budgetTimeout(tc.err, tc.waited, 5*time.Second, l)
			if got := ReasonOf(err); got != tc.want {
				t.Fatalf("reason %s, want %s", got, tc.want)
			}
			if tc.want == ReasonChainRateLimit && errors.Is(tc.err, timeout) &&
				!strings.Contains(err.Error(), "tick: call exceeded its 5s deadline after waiting") {
				t.Fatalf("message %q", err)
			}
		})
	}
}

// TestNodeBudgetSharedByActors: every actor's appends also take from the
// node's budget. Two flooders, each far inside its own budget, together
// write no more than the node's rate allows, about evenly, throttled (not
// failed); a modest actor beside them keeps ticking and never fails.
func TestNodeBudgetSharedByActors(t *testing.T) {
	const nodeRate, nodeBurst = 4 << 20, 1 << 20
	node := diskbudget.NewNode(diskbudget.NodeLimits{BytesPerSecond: nodeRate, BurstBytes: nodeBurst}, diskbudget.NodeOptions{})
	e, err := NewEngine(context.Background(), EngineOptions{NoDiskCache: true, SystemInfo: fixedSystemInfo{}, Version: "test", DiskBudget: node})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	comp := compile(t, e, "flood")
	own := diskbudget.Limits{BytesPerSecond: 1 << 30, BurstBytes: 1 << 30, EventsPerSecond: 1 << 20, BurstEvents: 1 << 20, MaxChainBytes: 1 << 40}
	begin := time.Now()
	var dirs []string
	var floods []*Actor
	for i := range 2 {
		dirs = append(dirs, t.TempDir())
		// 127 lines of 16 KiB a tick: 20 MiB/s each, five times the node's rate.
		floods = append(floods, start(t, e, ActorConfig{Name: "flood-" + strconv.Itoa(i), Component: comp, Dir: dirs[i],
			TickInterval: limits.MinTickInterval, InitialState: floodState('L', 127), DiskBudget: &own}))
	}
	dirs = append(dirs, t.TempDir())
	modest := start(t, e, ActorConfig{Name: "modest", Component: comp, Dir: dirs[2],
		TickInterval: limits.MinTickInterval, InitialState: floodState('T', 5), DiskBudget: &own})
	waitFor(t, "the modest actor's 15 ticks", func() bool { return modest.Ticks() >= 15 || modest.Phase() != PhaseRunning })
	for _, a := range append(floods, modest) {
		if a.Phase() != PhaseRunning {
			t.Fatalf("%s ended %s: %v; want every actor running, the flooders throttled", a.cfg.Name, a.Phase(), a.Err())
		}
	}
	for _, a := range append(floods, modest) {
		if err := a.Stop(context.Background(), "test over"); err != nil {
			t.Fatal(err)
		}
	}
	ran := time.Since(begin)
	var sizes []int64
	var total int64
	for _, dir := range dirs {
		st, err := os.Stat(actordir.ChainPath(dir))
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, st.Size())
		total += st.Size()
	}
	// The node's burst and rate, one line past it for each flooder, and
	// the engine's own records (charged without waiting).
	allowed := int64(nodeBurst) + int64(ran.Seconds()*nodeRate) + 2*(16<<10+record) + 1<<20
	t.Logf("in %s: flooders %d and %d KiB, modest %d KiB (%d ticks); the node allows %d KiB",
		ran.Round(time.Millisecond), sizes[0]>>10, sizes[1]>>10, sizes[2]>>10, modest.Ticks(), allowed>>10)
	if total > allowed {
		t.Fatalf("the actors wrote %d bytes in %s; the node's budget allows %d", total, ran, allowed)
	}
	if total < nodeRate/2 {
		t.Fatalf("the actors wrote only %d bytes: the floods did not run", total)
	}
	if lo, hi := min(sizes[0], sizes[1]), max(sizes[0], sizes[1]); lo < hi/2 {
		t.Fatalf("the flooders wrote %d and %d bytes: the node's budget is not shared evenly", sizes[0], sizes[1])
	}
}
