package controllers

import (
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/objstore"
	"github.com/troupe-dev/troupe/internal/s3test"
)

// keysUnder lists the store's keys under prefix.
func keysUnder(t *testing.T, st objstore.Store, prefix string) []string {
	t.Helper()
	keys, err := st.List(t.Context(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// An upload in flight when the retention removes a deleted actor's
// archive (retention 0, a host that never reported its flush) recreates
// objects, and even a manifest, after the removal: the tombstone stays
// for the grace, and the sweep past it removes them before the tombstone
// goes, so nothing of the actor is left.
func TestRetentionRemovesWhatAnUploadInFlightRecreated(t *testing.T) {
	srv := s3test.Start(t)
	st := srv.Bucket(t, "troupe")
	ctx := t.Context()
	clock := &testClock{now: time.Now()}
	const id = "1c2b3a4d-0000-4000-8000-00000000000a"
	w, err := archive.Claim(ctx, st, archive.ClaimOptions{ActorID: id, Epoch: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := archive.PutIndex(ctx, st, archive.IndexEntry{Namespace: "ns", Name: "gone", ActorID: id, Created: clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := archive.PutTombstone(ctx, st, archive.Tombstone{ActorID: id, Namespace: "ns", Name: "gone", DeletedAt: clock.Now()}); err != nil {
		t.Fatal(err)
	}
	sw := newArchiveSweeper(ArchiveSettings{Store: st, Where: "test", Retention: 0, OrphanGrace: time.Hour}, clock.Now)
	sw.log = logr.Discard()

	res, err := sw.sweep(ctx)
	if err != nil || res.kept != 1 || res.expired != 0 || !res.next.Equal(clock.Now().Add(time.Hour)) {
		t.Fatalf("first sweep: %+v %v", res, err)
	}
	if keys := keysUnder(t, st, "actors/"); len(keys) != 0 {
		t.Fatalf("the archive was kept: %v", keys)
	}
	if keys := keysUnder(t, st, "deleted/"); len(keys) != 1 {
		t.Fatalf("the tombstone went with the archive: %v", keys)
	}

	// The host's upload that was in flight lands now: a segment, and a
	// manifest written again (the listing before it found none).
	rec := testSegment(t)
	if _, err := w.Append(ctx, rec, archive.State{}); err != nil {
		t.Fatal(err)
	}
	if keys := keysUnder(t, st, "actors/"); len(keys) != 2 {
		t.Fatalf("the late upload: %v", keys)
	}
	clock.advance(time.Hour + time.Second)
	expired := testutil.ToFloat64(archivesExpired)
	if res, err := sw.sweep(ctx); err != nil || res.expired != 1 || res.kept != 0 || !res.next.IsZero() {
		t.Fatalf("sweep past the grace: %+v %v", res, err)
	}
	if keys := keysUnder(t, st, ""); len(keys) != 0 {
		t.Fatalf("left in the store: %v", keys)
	}
	if got := testutil.ToFloat64(archivesExpired); got != expired+1 {
		t.Fatalf("troupe_manager_archive_expired_total went from %v to %v", expired, got)
	}
}

// A pass of the leader's collection removes an orphan past the grace,
// counts it and its bytes, and keeps the live objects.
func TestOrphanCollectorPass(t *testing.T) {
	srv := s3test.Start(t)
	st := srv.Bucket(t, "troupe")
	ctx := t.Context()
	const id = "1c2b3a4d-0000-4000-8000-00000000000b"
	w, err := archive.Claim(ctx, st, archive.ClaimOptions{ActorID: id, Epoch: 1})
	if err != nil {
		t.Fatal(err)
	}
	rec := testSegment(t)
	if _, err := w.Append(ctx, rec, archive.State{}); err != nil {
		t.Fatal(err)
	}
	orphan := "actors/" + id + "/epochs/00000000000000000001/segments/00000000000000000001-00000000000000000002-0123456789abcdef.seg"
	if err := st.Put(ctx, orphan, strings.NewReader("lost"), 4, false); err != nil {
		t.Fatal(err)
	}
	clock := &testClock{now: time.Now()}
	o, err := newOrphanCollector(ArchiveSettings{Store: st, Where: "test", OrphanGrace: time.Hour}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	o.log = logr.Discard()
	if res := o.pass(ctx); res.Collected != 0 || res.Listed != 3 || !res.Wrapped {
		t.Fatalf("a pass within the grace: %+v", res)
	}
	clock.advance(2 * time.Hour)
	objects, bytes, ok := testutil.ToFloat64(orphansCollected), testutil.ToFloat64(orphanBytesCollected), testutil.ToFloat64(orphanPasses.WithLabelValues("ok"))
	if res := o.pass(ctx); res.Collected != 1 || res.Bytes != 4 || res.Removed[0] != orphan {
		t.Fatalf("a pass past the grace: %+v", res)
	}
	if testutil.ToFloat64(orphansCollected) != objects+1 || testutil.ToFloat64(orphanBytesCollected) != bytes+4 ||
		testutil.ToFloat64(orphanPasses.WithLabelValues("ok")) != ok+1 {
		t.Fatal("the metrics did not count the pass")
	}
	if _, err := archive.Verify(ctx, st, id); err != nil {
		t.Fatal(err)
	}
}

// testSegment is a chain's first record as a host uploads it: an
// ActorStart, which records no state.
func testSegment(t *testing.T) []byte {
	t.Helper()
	e := chain.Event{Seq: 0, Kind: chain.KindActorStart, Op: "start", Time: time.Now().UnixNano(), Data: []byte(`{}`)}
	e.Hash = chain.ComputeHash(&e)
	return chain.EncodeRecord(&e)
}
