package archiver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/chain"
)

// chainBytes is what an actor's chain files take in dir: chain.log and
// the rotated files.
func chainBytes(t testing.TB, dir string) (total int64, files int) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), chain.FileName) || strings.HasSuffix(e.Name(), ".state") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		total += info.Size()
		files++
	}
	return total, files
}

// firstSeq is the seq chain.log of dir begins at.
func firstSeq(t testing.TB, dir string) uint64 {
	t.Helper()
	var first uint64
	err := chain.ReadFile(filepath.Join(dir, chain.FileName), func(e chain.Event) error {
		first = e.Seq
		return errStop
	})
	if err != nil && err != errStop {
		return 0 // being replaced: the next poll reads it
	}
	return first
}

var errStop = os.ErrClosed

// A running actor's chain on its node stays about the local tail however
// long it runs: chain.log is rotated while it runs and the rotated files
// the archive holds are removed. The archive still verifies the whole
// history end to end, across the rotations, from seq 0 to the actor's
// head, and a restart on the node resumes the state from the new file.
func TestLocalTailBoundsARunningActorsChain(t *testing.T) {
	_, st := newStore(t)
	const tail, seg = 4 << 10, 1 << 10
	ar := newArchiver(t, Options{RecoveryPoint: 300 * time.Millisecond, SegmentBytes: seg, LocalTail: tail})
	dir := t.TempDir()
	e := newEngine(t)
	a := startTicker(t, e, dir, 100*time.Millisecond)
	var sts statuses
	s := ship(t, ar, claim(t, st, 1), a, &sts)

	var most int64
	rotations := map[uint64]bool{}
	// 8 rotations at half the tail each: the chain grew to 4 tails.
	eventually(t, 2*time.Minute, "the actor's chain to be rotated 8 times", func() bool {
		n, _ := chainBytes(t, dir)
		most = max(most, n)
		if f := firstSeq(t, dir); f > 0 {
			rotations[f] = true
		}
		return len(rotations) >= 8
	})
	_, length := a.Head()
	t.Logf("chain of %d events, rotated %d times; the most the node held of it: %d bytes (tail %d)", length, len(rotations), most, tail)
	// What may pass the tail: the file being written grows a recovery
	// point's events (or a segment) past half the tail before its seal
	// rotates it, and the file just rotated waits for its upload.
	if limit := int64(2*tail + seg); most > limit {
		t.Fatalf("the node held %d bytes of the chain, more than %d", most, limit)
	}
	if n, _ := chainBytes(t, dir); n > 2*tail+seg {
		t.Fatalf("the node holds %d bytes of the chain", n)
	}
	// The budget counts the file the actor writes, not the history.
	if b := a.Chain().Size(); b > tail {
		t.Fatalf("the chain file is %d bytes", b)
	}

	// Stop, flush: the archive holds the whole history, from seq 0, and
	// the state; the local file verifies on its own.
	if err := a.Stop(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	rep := verifyEndsAt(t, st, a)
	if rep.Origin.Length != 0 || rep.OriginKind == chain.KindSegmentStart {
		t.Fatalf("the archive's history starts at %+v (%s), not at the actor's first event", rep.Origin, rep.OriginKind)
	}
	local, err := chain.VerifyFile(filepath.Join(dir, chain.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if head, l := a.Head(); local.Head != head || local.Length != l {
		t.Fatalf("chain.log ends at %d, the actor at %d", local.Length, l)
	}
	rotated, _, err := actordir.ListRotated(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rotated {
		if r.Length > rep.Length {
			t.Fatalf("rotated file %s is past the archive", r.Path)
		}
	}

	// A restart on the node resumes the state, from the new file alone.
	before := ticks(a.State())
	a2 := startTicker(t, e, dir, 100*time.Millisecond)
	if got := ticks(a2.State()); got < before || before == 0 {
		t.Fatalf("the restart resumed %d ticks, the actor had %d", got, before)
	}
	w := claim(t, st, 1)
	s2, err := ar.Ship(testCtx(t), w, ActorSource(a2), ar.log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s2.Close)
	_, l2 := a2.Head()
	eventually(t, time.Minute, "the restarted run to be archived", func() bool { return s2.Archived() >= l2 })
	if _, err := archive.Verify(testCtx(t), st, actorID); err != nil {
		t.Fatal(err)
	}
}
