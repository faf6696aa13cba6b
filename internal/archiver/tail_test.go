package archiver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/actorhost"
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
	if err != nil && !errors.Is(err, errStop) {
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
	// 16 rotations at half the tail each or more: the chain grew to 8
	// tails at least.
	eventually(t, 3*time.Minute, "the actor's chain to be rotated 16 times", func() bool {
		n, _ := chainBytes(t, dir)
		most = max(most, n)
		if f := firstSeq(t, dir); f > 0 {
			rotations[f] = true
		}
		return len(rotations) >= 16
	})
	_, length := a.Head()
	t.Logf("chain of %d events, rotated %d times; the most the node held of it: %d bytes (tail %d)", length, len(rotations), most, tail)
	// What may pass the tail: after a removal the files take at most the
	// tail; chain.log then grows past half the tail, and some more until
	// a seal with nothing queued rotates it (a recovery point's events,
	// more on a loaded machine whose uploads lag), and the rotated file
	// waits for its upload before anything is removed: about 1.5 tails
	// and a few seals' events. 3 tails is far below the 8 the chain grew
	// to.
	if limit := int64(3 * tail); most > limit {
		t.Fatalf("the node held %d bytes of the chain, more than %d", most, limit)
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

// A run that rotated its chain and stopped before the rotated file's end
// was uploaded (a crash, a store that was down) leaves it to the next
// shipper on the node: it finds the archive's tip in the rotated files
// (or, when the archive holds nothing yet, starts at the oldest) and
// uploads them with the states saved beside them before chain.log. The
// rotated files stay on the node until the archive holds them.
func TestRotatedFilesNotArchivedAreUploadedFirst(t *testing.T) {
	for name, archivedFirst := range map[string]bool{"nothing archived yet": false, "archived up to a point in the rotated file": true} {
		t.Run(name, func(t *testing.T) {
			_, st := newStore(t)
			ctx := testCtx(t)
			dir := t.TempDir()
			a := startTicker(t, newEngine(t), dir, 100*time.Millisecond)
			eventually(t, 30*time.Second, "3 ticks", func() bool { return ticks(a.State()) >= 3 })
			if archivedFirst {
				ar := newArchiver(t, Options{RecoveryPoint: time.Hour, SegmentBytes: 8 << 20})
				s := ship(t, ar, claim(t, st, 1), a, &statuses{})
				if err := s.Flush(ctx); err != nil { // uploads up to now, then stops
					t.Fatal(err)
				}
				upTo := archived(t, st)
				eventually(t, 30*time.Second, "a tick the archive lacks", func() bool { _, l := a.Head(); return l > upTo })
			}
			var rots []uint64
			for range 2 {
				p, err := a.RotatePoint(ctx)
				if err != nil || !p.Rotated {
					t.Fatalf("rotating: %+v %v", p, err)
				}
				rots = append(rots, p.End.Length)
				_, l := a.Head()
				eventually(t, 30*time.Second, "a tick after the rotation", func() bool { _, n := a.Head(); return n > l })
			}
			if err := a.Stop(context.Background(), "test"); err != nil {
				t.Fatal(err)
			}
			before := archived(t, st)
			if before >= rots[0] {
				t.Fatalf("the archive holds %d events, past the rotation at %d", before, rots[0])
			}
			// A tail of 1 byte removes every rotated file the archive holds.
			ar := newArchiver(t, Options{RecoveryPoint: time.Hour, SegmentBytes: 8 << 20, LocalTail: 1})
			res, err := ar.ShipLeftovers(ctx, st, dir, "host-a", "node-a", 0)
			if !archivedFirst {
				// Never archived: leftovers skip it; the run's own
				// shipper (same epoch) does the same upload.
				if err != nil || res.Skipped == "" {
					t.Fatalf("leftovers of an actor never archived: %+v %v", res, err)
				}
				l, err := actorhost.OpenLeftover(dir, 0)
				if err != nil {
					t.Fatal(err)
				}
				s, err := ar.Ship(ctx, claim(t, st, 1), leftoverSource{l}, ar.log, nil)
				if err != nil {
					t.Fatal(err)
				}
				err = s.Flush(ctx)
				l.Close()
				if err != nil {
					t.Fatal(err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			rep := verifyEndsAt(t, st, a)
			if rep.Origin.Length != 0 {
				t.Fatalf("the history starts at %+v", rep.Origin)
			}
			rotated, _, err := actordir.ListRotated(dir)
			if err != nil || len(rotated) != 0 {
				t.Fatalf("rotated files left: %+v %v", rotated, err)
			}
		})
	}
}
