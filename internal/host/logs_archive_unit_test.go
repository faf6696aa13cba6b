package host

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/msgwire"
	"github.com/troupe-dev/troupe/internal/s3test"
)

// TestLogArchiveRanges reads the log records of an archived history cut
// into many segments: forward from any seq to a boundary, and backward the
// last n before it, within a byte bound; a record is never read twice or
// skipped, and a store that is down is an error, not a panic.
func TestLogArchiveRanges(t *testing.T) {
	srv := s3test.Start(t)
	st := srv.Bucket(t, "troupe")
	id := uuid.NewString()
	const n, per, before = 60, 7, 45
	var evs []chain.Event
	var link chain.Link
	var logged []uint64 // the seqs of the log events before the boundary
	for seq := range uint64(n) {
		e := chain.Event{Seq: seq, Parent: link.Head, Kind: chain.KindCustom, Op: "note", Time: int64(seq), Data: []byte(`{}`)}
		if seq%3 == 1 {
			e.Kind, e.Op, e.Data = chain.KindLog, "log", []byte(fmt.Sprintf(`{"level":"info","message":"m%d"}`, seq))
			if seq < before {
				logged = append(logged, seq)
			}
		}
		e.Hash = chain.ComputeHash(&e)
		evs = append(evs, e)
		link = chain.Link{Length: seq + 1, Head: e.Hash}
	}
	w, err := archive.Claim(context.Background(), st, archive.ClaimOptions{ActorID: id, Epoch: 3, Host: "host-a", Node: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += per {
		var recs []byte
		for j := i; j < min(i+per, n); j++ {
			recs = append(recs, chain.EncodeRecord(&evs[j])...)
		}
		if _, err := w.Append(context.Background(), recs, archive.State{}); err != nil {
			t.Fatalf("uploading events %d-: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	all := func(*msgwire.LogRecord) bool { return true }
	rec := func(e *chain.Event, epoch int64) (msgwire.LogRecord, bool) { return logRecord(e, id, epoch) }
	encode := func(r *msgwire.LogRecord) []byte {
		b, _ := json.Marshal(r)
		return append(b, '\n')
	}
	lineSeqs := func(lines [][]byte) []uint64 {
		var out []uint64
		for _, l := range lines {
			var r msgwire.LogRecord
			if err := json.Unmarshal(l, &r); err != nil {
				t.Fatal(err)
			}
			out = append(out, r.Seq)
		}
		return out
	}
	from := func(seq uint64) []uint64 {
		var out []uint64
		for _, s := range logged {
			if s >= seq {
				out = append(out, s)
			}
		}
		return out
	}
	last := func(s []uint64, k int) []uint64 { return s[max(len(s)-k, 0):] }

	for _, tc := range []struct {
		name     string
		from     uint64
		n        int
		maxBytes int
		want     []uint64
	}{
		{"forward from 0", 0, -1, 0, from(0)},
		{"forward from inside a segment", 10, -1, 0, from(10)},
		{"forward from a segment's start", 14, -1, 0, from(14)},
		{"forward from the last before", before - 1, -1, 0, from(before - 1)},
		{"forward from the boundary", before, -1, 0, nil},
		{"back 1", 0, 1, maxTailBytes, last(from(0), 1)},
		{"back 4 (two segments)", 0, 4, maxTailBytes, last(from(0), 4)},
		{"back over all", 0, 100, maxTailBytes, from(0)},
		{"back after 20", 20, 100, maxTailBytes, from(20)},
		{"back 3 after 38", 38, 3, maxTailBytes, last(from(38), 3)},
		{"back within 2 lines' bytes", 0, 100, 2*len(encode(&msgwire.LogRecord{Seq: 43, ActorID: id, Epoch: 3, Level: "info", Message: "m43", Time: time.Unix(0, 43).UTC()})) + 1, last(from(0), 2)},
	} {
		la := &logArchive{st: st, actorID: id, timeout: 10 * time.Second}
		var got []uint64
		if tc.n < 0 {
			err = la.forward(ctx, tc.from, before, all, rec, func(r *msgwire.LogRecord) error {
				if r.Epoch != 3 || r.ActorID != id || r.Message != fmt.Sprintf("m%d", r.Seq) {
					t.Fatalf("%s: record %+v", tc.name, r)
				}
				got = append(got, r.Seq)
				return nil
			})
		} else {
			var lines [][]byte
			lines, err = la.backward(ctx, tc.from, before, tc.n, tc.maxBytes, all, rec, encode)
			got = lineSeqs(lines)
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: got seqs %v, want %v", tc.name, got, tc.want)
		}
	}

	// since= starts at the newest segment older than it (segments of 7
	// events, event i logged at i ns), not at the history's start.
	for _, tc := range []struct {
		since      int64
		from, want uint64
	}{
		{30, 0, 28}, {28, 0, 21}, {0, 0, 0}, {1, 0, 0}, {100, 0, 42}, {30, 40, 40}, {30, before, before},
	} {
		la := &logArchive{st: st, actorID: id, timeout: 10 * time.Second}
		got, err := la.startSince(ctx, time.Unix(0, tc.since), tc.from, before)
		if err != nil || got != tc.want {
			t.Errorf("since %d from %d: start %d (%v), want %d", tc.since, tc.from, got, err, tc.want)
		}
	}

	// No history: nothing, and no error.
	none := &logArchive{st: st, actorID: uuid.NewString(), timeout: 10 * time.Second}
	if lines, err := none.backward(ctx, 0, before, 10, maxTailBytes, all, rec, encode); err != nil || len(lines) != 0 {
		t.Fatalf("no history: %d lines, %v", len(lines), err)
	}
	srv.Stop()
	down := &logArchive{st: st, actorID: id, timeout: 2 * time.Second}
	err = down.forward(ctx, 0, before, all, rec, func(*msgwire.LogRecord) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "archived log records") {
		t.Fatalf("store down: %v", err)
	}
}
