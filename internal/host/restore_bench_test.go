package host

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/objstore"
	"github.com/troupe-dev/troupe/internal/s3test"
)

// archiveTicker archives the chain of a ticker that ticked up to events
// events (each tick changes its 8-byte count), in segments of perSegment
// events, as a host's uploads would; it returns the history's end.
func archiveTicker(b *testing.B, st objstore.Store, id string, events, perSegment int) chain.Link {
	b.Helper()
	ctx := context.Background()
	w, err := archive.Claim(ctx, st, archive.ClaimOptions{ActorID: id, Epoch: 1, Host: "host-a", Node: "node-a"})
	if err != nil {
		b.Fatal(err)
	}
	var link chain.Link
	var recs []byte
	count := uint64(0)
	add := func(kind chain.Kind, data string) {
		e := chain.Event{Seq: link.Length, Parent: link.Head, Kind: kind, Op: "op", Time: int64(link.Length), Data: []byte(data)}
		e.Hash = chain.ComputeHash(&e)
		recs = append(recs, chain.EncodeRecord(&e)...)
		link = chain.Link{Length: e.Seq + 1, Head: e.Hash}
	}
	state := func() (string, []byte) {
		s := binary.LittleEndian.AppendUint64(nil, count)
		sum := sha256.Sum256(s)
		return fmt.Sprintf(`"hasState":true,"stateSha256":%q,"stateBytes":8`, hex.EncodeToString(sum[:])), s
	}
	add(chain.KindActorStart, `{"actorID":"`+id+`"}`)
	add(chain.KindInitCall, `{"hasState":false}`)
	rec, _ := state()
	add(chain.KindInitResult, `{"ok":true,`+rec+`}`)
	for int(link.Length) < events {
		count++
		rec, _ = state()
		add(chain.KindTick, `{"ok":true,`+rec+`,"stateChanged":true}`)
		if int(link.Length)%perSegment == 0 || int(link.Length) == events {
			_, s := state()
			if _, err := w.Append(ctx, recs, archive.State{HasState: true, Data: s}); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	return link
}

// BenchmarkRestore100k measures what a host does for an actor whose
// 100k-event chain is in the archive (issue 13's target: within a second
// from a store on loopback): read and verify what the restore needs
// (tryRestore: the manifests, the segment holding the last state, the
// state) and start the actor from it (engine.Start with the restored
// state: a SegmentStart, init with the count). The baseline, in the same
// run, is the same start without the archive (a fresh actor), so the
// ratio is what restoring costs.
func BenchmarkRestore100k(b *testing.B) {
	srv := s3test.Start(b)
	st := srv.Bucket(b, "troupe")
	id := uuid.NewString()
	end := archiveTicker(b, st, id, 100_000, 1000)
	e, err := actorhost.NewEngine(context.Background(), actorhost.EngineOptions{NoDiskCache: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Close(context.Background()) })
	comp, err := e.Compile(context.Background(), tickerWasm(b))
	if err != nil {
		b.Fatal(err)
	}
	h := &Host{cfg: Config{Archive: &ArchiveConfig{Store: st, Where: "versitygw"}}}
	a := &v1alpha1.Actor{Status: v1alpha1.ActorStatus{ActorID: id}}
	status := &actorhost.ChainLink{Head: end.Head, Length: end.Length, Node: "node-a"}
	start := func(b *testing.B, link *actorhost.ChainLink) {
		act, err := e.Start(context.Background(), actorhost.ActorConfig{ID: id, Name: "ticker", Component: comp, Dir: b.TempDir(),
			TickInterval: -1, Continue: link})
		if err != nil {
			b.Fatal(err)
		}
		if err := act.Stop(context.Background(), "bench"); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("restore-and-start", func(b *testing.B) {
		for b.Loop() {
			out, wait, err := h.tryRestore(context.Background(), a, id, status, v1alpha1.RestoreFromArchive)
			if err != nil || wait != "" || out.restored == nil || out.restored.Lost != nil || out.restored.Length != 100_000 {
				b.Fatalf("restore: %+v %q %v", out, wait, err)
			}
			start(b, out.restored)
		}
	})
	b.Run("baseline-fresh-start", func(b *testing.B) {
		for b.Loop() {
			start(b, nil)
		}
	})
}
