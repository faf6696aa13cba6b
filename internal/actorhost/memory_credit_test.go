package actorhost

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// imageCreditEngine starts an engine with a budget, and the image module's
// component, or skips where the image can't be shared and measured.
func imageCreditEngine(t *testing.T) (*Engine, *MemoryBudget, *Component) {
	t.Helper()
	if !canCountImageWrites() {
		t.Skip("no shared memory image here (Linux with /proc/self/pagemap only)")
	}
	budget := NewMemoryBudget(1 << 40)
	e, err := NewEngine(context.Background(), EngineOptions{NoDiskCache: true, SystemInfo: fixedSystemInfo{}, Version: "test", MemoryBudget: budget})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	c := compile(t, e, "image")
	if c.image == nil || !c.image.shared() {
		t.Fatal("the image module's image is not shared")
	}
	return e, budget, c
}

// TestImageCreditChargesWrittenPages: an actor whose memory lies over a
// shared image is charged its committed memory less the image pages it
// has not written; as it writes them, the next refresh charges them, up to
// its whole committed memory.
func TestImageCreditChargesWrittenPages(t *testing.T) {
	e, _, c := imageCreditEngine(t)
	a := start(t, e, ActorConfig{Name: "a", Component: c})
	page := uint64(os.Getpagesize())
	committed := uint64(5 * wasmPageSize) // image.wat's memory
	image := c.image.size
	e.RefreshMemory()
	// init wrote its result at 1024 and the host its arguments at 8192
	// (cabi_realloc's heap): two pages of the image.
	written := uint64(len(map[uint64]bool{1024 / page: true, 8192 / page: true})) * page
	if got, want := a.MemoryUsage().Linear, committed-image+written; got != want {
		t.Fatalf("after init: linear charge %d, want %d (committed %d less the image %d, plus the %d written)", got, want, committed, image, written)
	}
	half := image / 2
	if _, err := a.Call(context.Background(), "dirty", half); err != nil {
		t.Fatal(err)
	}
	if st := e.RefreshMemory(); st.Evicted != 0 {
		t.Fatalf("%d evicted under an ample budget", st.Evicted)
	}
	if got, want := a.MemoryUsage().Linear, committed-image+half; got != want {
		t.Fatalf("after writing half the image: charge %d, want %d", got, want)
	}
	if _, err := a.Call(context.Background(), "dirty", image); err != nil {
		t.Fatal(err)
	}
	e.RefreshMemory()
	if got := a.MemoryUsage().Linear; got != committed {
		t.Fatalf("after writing the whole image: charge %d, want all %d committed", got, committed)
	}
	if err := a.Stop(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	e.RefreshMemory()
	if got := a.MemoryUsage().Linear; got != 0 {
		t.Fatalf("stopped: charge %d, want 0", got)
	}
}

// TestImageWritesPastTheBudgetStopTheWriter: the image pages an actor
// writes ask no grow, so they can take the host past its budget between
// two refreshes; the refresh that finds it stops the actor that wrote
// them, reason MemoryLimit, and leaves the others running. An overspend
// that no write explains (a lowered limit) stops nobody.
func TestImageWritesPastTheBudgetStopTheWriter(t *testing.T) {
	e, budget, c := imageCreditEngine(t)
	writer := start(t, e, ActorConfig{Name: "writer", Component: c})
	quiet := start(t, e, ActorConfig{Name: "quiet", Component: c})
	e.RefreshMemory()

	budget.SetLimit(budget.Used() - 1)
	if st := e.RefreshMemory(); st.Evicted != 0 {
		t.Fatalf("a lowered limit stopped %d actors", st.Evicted)
	}
	budget.SetLimit(budget.Used() + 64<<10) // less than the image
	if _, err := writer.Call(context.Background(), "dirty", c.image.size); err != nil {
		t.Fatal(err)
	}
	if st := e.RefreshMemory(); st.Evicted != 1 {
		t.Fatalf("evicted %d, want the writer", st.Evicted)
	}
	select {
	case <-writer.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the writer did not stop")
	}
	var ae *ActorError
	if err := writer.Err(); !errors.As(err, &ae) || ae.Reason != ReasonMemoryLimit || !strings.Contains(ae.Message, "initial memory image") {
		t.Fatalf("writer ended with %v, want MemoryLimit naming its image writes", err)
	}
	if writer.Phase() != PhaseFailed {
		t.Fatalf("writer phase %s, want Failed", writer.Phase())
	}
	if quiet.Phase() != PhaseRunning {
		t.Fatalf("quiet actor phase %s, want Running", quiet.Phase())
	}
	if _, err := quiet.Call(context.Background(), "poke", 'Q'); err != nil {
		t.Fatalf("quiet actor: %v", err)
	}
	evs := events(t, writer)
	last := evs[len(evs)-1]
	if !strings.Contains(string(last.Data), `"reason":"MemoryLimit"`) {
		t.Fatalf("last event %s %s, want the ActorStop with reason MemoryLimit", last.Kind, last.Data)
	}
	if used, limit := budget.Used(), budget.Limit(); used > limit {
		t.Fatalf("still over budget after the eviction: %d of %d", used, limit)
	}
}

// TestImageWriterStoppedInItsCall: an actor still in the call that wrote
// its image past the budget is stopped there: the call is canceled and
// fails with the budget's reason, not Canceled.
func TestImageWriterStoppedInItsCall(t *testing.T) {
	e, budget, c := imageCreditEngine(t)
	a := start(t, e, ActorConfig{Name: "spinner", Component: c, CallTimeout: time.Minute})
	e.RefreshMemory()
	budget.SetLimit(budget.Used() + 64<<10)
	called := make(chan error, 1)
	go func() {
		_, err := a.Call(context.Background(), "spin", uint64(c.image.size))
		called <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for e.RefreshMemory().Evicted == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the spinning writer was never stopped")
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not a wait for an outcome
	}
	var ae *ActorError
	select {
	case err := <-called:
		if !errors.As(err, &ae) || ae.Reason != ReasonMemoryLimit {
			t.Fatalf("the call ended with %v, want MemoryLimit", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the call was not canceled")
	}
	select {
	case <-a.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the actor's run did not end")
	}
	if !errors.As(a.Err(), &ae) || ae.Reason != ReasonMemoryLimit {
		t.Fatalf("the actor ended with %v, want MemoryLimit", a.Err())
	}
}
