package archiver

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/objstore"
)

// A host killed with SIGKILL at any point, with a tail so small that its
// actor's chain is rotated at nearly every seal (so kills land inside
// rotations, inside uploads of rotated files, and inside the removal of
// archived ones): every next start on the node resumes the actor's state
// (its tick count never goes back: a start that lost the state would
// begin again at 0), the archive verifies after every kill and holds at
// least what was acknowledged, and in the end the node's files and the
// archive hold one chain, every event once, from seq 0 to the node's
// head. TROUPE_TEST_LONG runs many more kills.
func TestKilledHostsRotatingTheirChainsLoseNothing(t *testing.T) {
	kills := 8
	if os.Getenv("TROUPE_TEST_LONG") != "" {
		kills = 80
	}
	const tail = 1 << 10
	srv, st := newStore(t)
	bucket := st.Store.(*objstore.S3).Bucket()
	dir := t.TempDir()
	ctx := testCtx(t)
	var last uint64
	var lastTicks uint32
	midRotation := 0
	for i := range kills {
		epoch := int64(1 + i/3)
		spec := fmt.Sprintf("%s %s %s %s %d %s %d", srv.Endpoint, bucket, srv.AccessKey, srv.SecretKey, epoch, dir, tail)
		// Anywhere in the next recovery point: the seal (and rotation)
		// comes at 75-90% of it.
		acked := killHost(t, spec, fmt.Sprintf("host %d (epoch %d)", i, epoch), time.Duration(rand.IntN(150))*time.Millisecond)
		if _, err := os.Stat(filepath.Join(dir, chain.FileName+chain.NextSuffix)); err == nil {
			midRotation++ // killed before the rename, after the new file
		} else if rotated, _, _ := actordir.ListRotated(dir); len(rotated) > 0 && rotated[len(rotated)-1].Length > acked {
			midRotation++ // rotated, its last segment not acknowledged
		}

		rep, err := archive.Verify(ctx, st, actorID)
		if err != nil {
			t.Fatalf("after killing host %d (epoch %d): %v", i, epoch, err)
		}
		if rep.Length < acked || rep.Length < last {
			t.Fatalf("after host %d: the archive holds %d events, the host acknowledged %d, it held %d before", i, rep.Length, acked, last)
		}
		last = rep.Length
		r, err := archive.Restore(ctx, st, actorID)
		if err != nil {
			t.Fatal(err)
		}
		if n := ticks(r.State); n < lastTicks {
			t.Fatalf("after host %d: the archived state has %d ticks, it had %d: a start lost the state", i, n, lastTicks)
		} else {
			lastTicks = n
		}
	}
	t.Logf("%d kills, %d of them in a rotation or before its file was archived; the archive holds %d events, %d ticks", kills, midRotation, last, lastTicks)

	// The last host's leftovers go up, including a rotated file whose
	// end it did not upload; the node's files (rotated ones and
	// chain.log, one after the other) are one chain with no event twice
	// or missing, and the archive ends at its head.
	ar := newArchiver(t, Options{RecoveryPoint: time.Hour, SegmentBytes: 8 << 20, LocalTail: tail})
	res, err := ar.ShipLeftovers(ctx, st, dir, "host", "node-a", 0)
	if err != nil {
		t.Fatal(err)
	}
	rotated, orphans, err := actordir.ListRotated(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, r := range rotated {
		files = append(files, r.Path)
	}
	files = append(files, filepath.Join(dir, chain.FileName))
	var prev *chain.Event
	for _, f := range files {
		err := chain.ReadFile(f, func(e chain.Event) error {
			if prev != nil && (e.Seq != prev.Seq+1 || e.Parent != prev.Hash) {
				return fmt.Errorf("%s: event %d does not follow %d", f, e.Seq, prev.Seq)
			}
			e.Data = nil
			prev = &e
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	rep, err := archive.Verify(ctx, st, actorID)
	if err != nil {
		t.Fatal(err)
	}
	if prev == nil || rep.Head != prev.Hash || rep.Length != prev.Seq+1 || res.To != rep.Length || rep.Origin.Length != 0 {
		t.Fatalf("after the leftovers the archive ends at %d/%s from %+v (%+v), the node's chain at %v", rep.Length, rep.Head.Short(), rep.Origin, res, prev)
	}
	if len(orphans) != 0 {
		t.Fatalf("states without a rotated file after a start: %v", orphans)
	}
	if n, _ := chainBytes(t, dir); n > 4*tail+(2<<10) {
		t.Fatalf("the node holds %d bytes of the chain (tail %d)", n, tail)
	}
}
