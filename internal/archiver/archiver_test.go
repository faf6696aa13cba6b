package archiver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/chain"
)

// ship starts shipping a's chain under w.
func ship(t *testing.T, ar *Archiver, w *archive.Writer, a *actorhost.Actor, st *statuses) *Shipper {
	t.Helper()
	s, err := ar.Ship(testCtx(t), w, ActorSource(a), ar.log, st.report)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// verifyEndsAt checks the whole archive and that it ends at a's head, and
// that it restores a's state.
func verifyEndsAt(t *testing.T, st *countingStore, a *actorhost.Actor) *archive.Report {
	t.Helper()
	ctx := testCtx(t)
	rep, err := archive.Verify(ctx, st, actorID)
	if err != nil {
		t.Fatal(err)
	}
	head, length := a.Head()
	if rep.Head != head || rep.Length != length {
		t.Fatalf("the archive ends at %d/%s, the actor's chain at %d/%s", rep.Length, rep.Head.Short(), length, head.Short())
	}
	r, err := archive.Restore(ctx, st, actorID)
	if err != nil {
		t.Fatal(err)
	}
	if !r.HasState || !bytes.Equal(r.State, a.State()) {
		t.Fatalf("the archive restores state %x, the actor has %x", r.State, a.State())
	}
	return rep
}

// A ticking actor's events reach the archive within the recovery point,
// in batches: about one upload a recovery point, not one an event.
func TestSealsByAgeWithinTheRecoveryPoint(t *testing.T) {
	_, st := newStore(t)
	const rp = time.Second
	ar := newArchiver(t, Options{RecoveryPoint: rp, SegmentBytes: 8 << 20})
	a := startTicker(t, newEngine(t), t.TempDir(), 100*time.Millisecond)
	var sts statuses
	ship(t, ar, claim(t, st, 1), a, &sts)

	// An event appended now is archived within the recovery point (and
	// the machine's load: polled with a generous deadline, and the lag
	// itself measured).
	_, target := a.Head()
	begin := time.Now()
	eventually(t, 30*time.Second, "the archive to hold the actor's events", func() bool { return archived(t, st) >= target })
	lag := time.Since(begin)
	t.Logf("an event reached the archive after %s (recovery point %s)", lag.Round(time.Millisecond), rp)
	// Reported once the upload returned, a moment after the manifest.
	eventually(t, 30*time.Second, "the status UpToDate", func() bool { return sts.last().Reason == v1alpha1.ReasonArchiveUpToDate })

	// Batching: over a few recovery points, a 100 ms ticker (10 events a
	// second) is uploaded in about one segment per recovery point.
	n0 := mustResolve(t, st).Len()
	_, from := a.Head()
	eventually(t, 60*time.Second, "4 more recovery points of events archived", func() bool {
		_, l := a.Head()
		return l > from+40 && archived(t, st) > from+40
	})
	n := mustResolve(t, st).Len() - n0
	_, to := a.Head()
	if events := to - from; uint64(n)*4 > events {
		t.Fatalf("%d segments for %d events: not batched", n, events)
	}
	verifyAfterStop(t, st, a)
}

func mustResolve(t *testing.T, st *countingStore) *archive.History {
	t.Helper()
	h, err := archive.Resolve(testCtx(t), st, actorID)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// mustSegments is every segment of the actor's history.
func mustSegments(t *testing.T, st *countingStore) []archive.Placed {
	t.Helper()
	segs, err := mustResolve(t, st).All(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

func verifyAfterStop(t *testing.T, st *countingStore, a *actorhost.Actor) {
	t.Helper()
	if err := a.Stop(context.Background(), "test over"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the archive to catch up", func() bool {
		_, l := a.Head()
		return archived(t, st) == l
	})
	verifyEndsAt(t, st, a)
}

// A segment is sealed once SegmentBytes wait, long before the recovery
// point.
func TestSealsBySize(t *testing.T) {
	_, st := newStore(t)
	const segBytes = 4 << 10
	ar := newArchiver(t, Options{RecoveryPoint: time.Hour, SegmentBytes: segBytes})
	a := startTicker(t, newEngine(t), t.TempDir(), 100*time.Millisecond)
	var sts statuses
	ship(t, ar, claim(t, st, 1), a, &sts)
	eventually(t, 60*time.Second, "3 segments archived", func() bool { return mustResolve(t, st).Len() >= 3 })
	for _, s := range mustSegments(t, st) {
		// A scan sees the bytes at most one scan late: a few ticks more.
		if s.Segment.Bytes < segBytes || s.Segment.Bytes > 2*segBytes {
			t.Errorf("segment %d-%d holds %d bytes, want about %d", s.Segment.First, s.Segment.Length-1, s.Segment.Bytes, segBytes)
		}
	}
	if _, err := archive.Verify(testCtx(t), st, actorID); err != nil {
		t.Fatal(err)
	}
}

// While the store is down the actor runs on, the status says so (once,
// with a Warning) after the recovery point, and the archive catches up
// when the store is back.
func TestCatchesUpAfterTheStoreWasDown(t *testing.T) {
	srv, st := newStore(t)
	const rp = 500 * time.Millisecond
	ar := newArchiver(t, Options{RecoveryPoint: rp, SegmentBytes: 8 << 20, AttemptTimeout: 2 * time.Second})
	a := startTicker(t, newEngine(t), t.TempDir(), 100*time.Millisecond)
	var sts statuses
	ship(t, ar, claim(t, st, 1), a, &sts)
	eventually(t, 30*time.Second, "a first upload", func() bool { return sts.last().Reason == v1alpha1.ReasonArchiveUpToDate })

	srv.Stop()
	_, before := a.Head()
	eventually(t, 60*time.Second, "the status to say the archive is unavailable", func() bool {
		return sts.last().Reason == v1alpha1.ReasonArchiveUnavailable
	})
	if !sts.last().Warn {
		t.Fatal("ArchiveUnavailable without a Warning")
	}
	if ar.oldest() < rp {
		t.Fatalf("the oldest unarchived event is %s old while the store is down, want at least the recovery point", ar.oldest())
	}
	_, during := a.Head()
	if during <= before || a.Phase() != actorhost.PhaseRunning {
		t.Fatalf("the actor did not run on while the store was down (%d -> %d events, %s)", before, during, a.Phase())
	}
	srv.Restart()
	eventually(t, 60*time.Second, "the archive to catch up", func() bool {
		return sts.last().Reason == v1alpha1.ReasonArchiveUpToDate && archived(t, st) >= during
	})
	warnings := 0
	for _, s := range sts.all {
		if s.Warn {
			warnings++
		}
	}
	if warnings != 1 {
		t.Fatalf("%d warnings for one outage: %+v", warnings, sts.all)
	}
	verifyAfterStop(t, st, a)
}

// A later epoch's claim stops the shipper for good, and it says so.
func TestFencedStopsTheShipper(t *testing.T) {
	_, st := newStore(t)
	ar := newArchiver(t, Options{RecoveryPoint: 300 * time.Millisecond, SegmentBytes: 8 << 20})
	a := startTicker(t, newEngine(t), t.TempDir(), 100*time.Millisecond)
	var sts statuses
	s := ship(t, ar, claim(t, st, 1), a, &sts)
	eventually(t, 30*time.Second, "a first upload", func() bool { return archived(t, st) > 0 })
	claim(t, st, 2)
	eventually(t, 30*time.Second, "the shipper to see it was fenced", func() bool {
		return sts.last().Reason == v1alpha1.ReasonArchiveFenced
	})
	puts := st.puts.Load()
	// Nothing more is tried: the scan leaves a fenced shipper alone, and
	// Flush refuses at once.
	if err := s.Flush(testCtx(t)); !errors.Is(err, archive.ErrFenced) {
		t.Fatalf("Flush of a fenced shipper: %v", err)
	}
	_, l := a.Head()
	eventually(t, 30*time.Second, "more events", func() bool { _, n := a.Head(); return n > l+5 })
	if got := st.puts.Load(); got != puts {
		t.Fatalf("a fenced shipper made %d more PUTs", got-puts)
	}
}

// Flush after the run ended uploads everything, whatever the recovery
// point; a host that starts the actor again on the same node (the same
// epoch's claim) continues that manifest without uploading anything twice.
func TestFlushAndRestartContinueTheManifest(t *testing.T) {
	_, st := newStore(t)
	ar := newArchiver(t, Options{RecoveryPoint: time.Hour, SegmentBytes: 8 << 20})
	e := newEngine(t)
	dir := t.TempDir()
	var heads []chain.Link
	for run := range 3 {
		a := startTicker(t, e, dir, 100*time.Millisecond)
		if c := ticks(a.State()); run > 0 && c == 0 {
			t.Fatalf("run %d did not resume", run)
		}
		var sts statuses
		s := ship(t, ar, claim(t, st, 1), a, &sts)
		_, l := a.Head()
		eventually(t, 30*time.Second, "a few ticks", func() bool { _, n := a.Head(); return n > l+3 })
		if err := a.Stop(context.Background(), "run over"); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		verifyEndsAt(t, st, a)
		head, length := a.Head()
		heads = append(heads, chain.Link{Length: length, Head: head})
	}
	h := mustResolve(t, st)
	if h.Len() != 3 || len(h.Epochs) != 1 {
		t.Fatalf("3 runs of one epoch flushed %d segments in epochs %v, want 3 in one", h.Len(), h.Epochs)
	}
	for i, s := range mustSegments(t, st) {
		if s.Segment.Length != heads[i].Length || s.Segment.Head != heads[i].Head.String() {
			t.Errorf("segment %d ends at %d, run %d ended at %d", i, s.Segment.Length, i, heads[i].Length)
		}
	}
}

// slowStore makes every PUT take delay while slow is set.
type slowStore struct {
	*countingStore
	slow  atomic.Bool
	delay time.Duration
}

func (s *slowStore) Put(ctx context.Context, key string, r io.Reader, size int64, ifAbsent bool) error {
	if s.slow.Load() {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.countingStore.Put(ctx, key, r, size, ifAbsent)
}

// A store that answers, but slower than the recovery point allows, makes
// the status say Behind (without a Warning: nothing fails), and UpToDate
// again once uploads keep up.
func TestSaysBehindWhenUploadsCantKeepUp(t *testing.T) {
	_, st := newStore(t)
	slow := &slowStore{countingStore: st, delay: 400 * time.Millisecond}
	const rp = 500 * time.Millisecond
	ar := newArchiver(t, Options{RecoveryPoint: rp, SegmentBytes: 8 << 20, AttemptTimeout: 30 * time.Second})
	a := startTicker(t, newEngine(t), t.TempDir(), 100*time.Millisecond)
	var sts statuses
	ship(t, ar, claim(t, slow, 1), a, &sts)
	eventually(t, 30*time.Second, "a first upload", func() bool { return sts.last().Reason == v1alpha1.ReasonArchiveUpToDate })

	// An upload is three PUTs (segment, state, manifest): 1.2 s, more
	// than twice the recovery point.
	slow.slow.Store(true)
	eventually(t, 60*time.Second, "the status to say the archive is behind", func() bool {
		return sts.last().Reason == v1alpha1.ReasonArchiveBehind
	})
	if st := sts.last(); st.Warn || !strings.Contains(st.Message, "past the recovery point of 500ms") {
		t.Fatalf("Behind: %+v", st)
	}
	if ar.oldest() <= rp {
		t.Fatalf("the oldest unarchived event is %s old while the archive is behind, want more than the recovery point", ar.oldest())
	}
	slow.slow.Store(false)
	eventually(t, 60*time.Second, "the archive to catch up", func() bool { return sts.last().Reason == v1alpha1.ReasonArchiveUpToDate })
	for _, s := range sts.all {
		if s.Warn || s.Reason == v1alpha1.ReasonArchiveUnavailable {
			t.Fatalf("a slow store that never failed was reported as failing: %+v", sts.all)
		}
	}
	verifyAfterStop(t, st, a)
}
