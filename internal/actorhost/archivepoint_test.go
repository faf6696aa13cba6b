package actorhost

import (
	"context"
	"io"
	"os"
	"testing"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/limits"
)

// checkPoint reads the chain file up to p.Offset as one segment and checks
// that it ends at p.End and that p's state is the one its last
// state-recording event records.
func checkPoint(t *testing.T, p ArchivePoint) {
	t.Helper()
	f, err := os.Open(p.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(int64(len(chain.Magic)), io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var rec chain.StateRecord
	found := false
	rep, err := chain.VerifySegment(io.LimitReader(f, p.Offset-int64(len(chain.Magic))), nil, func(e chain.Event) error {
		r, ok, err := chain.RecordedState(&e)
		if ok {
			rec, found = r, true
		}
		return err
	})
	if err != nil {
		t.Fatalf("the file up to offset %d: %v", p.Offset, err)
	}
	if rep.End() != p.End {
		t.Fatalf("the file up to offset %d ends at %d/%s, the point says %d/%s", p.Offset, rep.Length, rep.Head.Short(), p.End.Length, p.End.Head.Short())
	}
	if !found {
		t.Fatal("no event records a state")
	}
	if rec.HasState != p.HasState || (rec.HasState && rec.Sha256 != digestHex(p.State)) {
		t.Fatalf("the chain records %+v at offset %d, the point's state is %x (hasState %v)", rec, p.Offset, p.State, p.HasState)
	}
}

// An archive point taken while the actor ticks is a durable record
// boundary whose state is the one the chain records there, however the
// ticks interleave with it; after the run ends it is the final end.
func TestArchivePointIsConsistentWhileTicking(t *testing.T) {
	e, _ := newTestEngine(t)
	dir := t.TempDir()
	a := start(t, e, ActorConfig{Name: "ticker", Component: compile(t, e, "tick"), Dir: dir, InitialState: tickState('c'),
		TickInterval: limits.MinTickInterval})
	var last ArchivePoint
	for i := 0; i < 30 || a.Ticks() < 5; i++ {
		p, err := a.ArchivePoint(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if p.End.Length < last.End.Length || p.Offset < last.Offset {
			t.Fatalf("point %d went back: %+v after %+v", i, p.End, last.End)
		}
		checkPoint(t, p)
		last = p
		if i > 10000 {
			t.Fatal("the actor did not tick")
		}
	}
	if err := a.Stop(context.Background(), "test over"); err != nil {
		t.Fatal(err)
	}
	p, err := a.ArchivePoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	head, length := a.Head()
	if p.End != (chain.Link{Length: length, Head: head}) {
		t.Fatalf("after the stop the point is %+v, the head %d/%s", p.End, length, head.Short())
	}
	fi, err := os.Stat(p.Path)
	if err != nil || fi.Size() != p.Offset {
		t.Fatalf("after the stop the point's offset is %d, the file has %v bytes (%v)", p.Offset, fi.Size(), err)
	}
	checkPoint(t, p)

	mem := start(t, e, ActorConfig{Name: "mem", Component: compile(t, e, "tick"), InitialState: tickState('c')})
	if _, err := mem.ArchivePoint(context.Background()); err == nil {
		t.Fatal("an actor without a directory gave an archive point")
	}
}
