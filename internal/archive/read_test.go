package archive

import (
	"bytes"
	"errors"
	"testing"

	"github.com/troupe-dev/troupe/internal/chain"
)

// Since finds the segment holding any seq of the history, and reading
// the segments it gives one by one (ReadSegment, each checked against its
// own manifest entry) shows every event from there once, in order, across
// epochs; a damaged segment is ErrBroken, a callback's error comes back
// as it is.
func TestSinceAndReadSegment(t *testing.T) {
	st := newMemStore()
	ctx := testCtx(t)
	buildTwoEpochs(t, st)
	rep, err := Verify(ctx, st, actorID)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Resolve(ctx, st, actorID)
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{0, 1, rep.Length / 2, rep.Length - 1, rep.Length + 5} {
		segs, err := h.Since(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if len(segs) == 0 {
			t.Fatalf("since %d: no segment", seq)
		}
		if f := segs[0]; seq < rep.Length && (f.First > seq || f.Length <= seq) {
			t.Fatalf("since %d: the first segment holds %d-%d", seq, f.First, f.Length-1)
		}
		next := segs[0].First
		for i := range segs {
			err := ReadSegment(ctx, st, actorID, &segs[i], func(e chain.Event) error {
				if e.Seq != next {
					t.Fatalf("since %d: seq %d, want %d", seq, e.Seq, next)
				}
				next++
				return nil
			})
			if err != nil {
				t.Fatalf("since %d: segment %d-%d: %v", seq, segs[i].First, segs[i].Length-1, err)
			}
		}
		if next != rep.Length {
			t.Fatalf("since %d: read to %d, the history ends at %d", seq, next, rep.Length)
		}
	}

	segs, err := h.Since(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := &segs[len(segs)-1]
	stop := errors.New("the client went away")
	if err := ReadSegment(ctx, st, actorID, p, func(chain.Event) error { return stop }); !errors.Is(err, stop) || errors.Is(err, ErrBroken) {
		t.Fatalf("callback error came back as %v", err)
	}
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"a flipped byte", func(b []byte) []byte { b[len(b)-3] ^= 1; return b }},
		{"cut short", func(b []byte) []byte { return b[:len(b)-1] }},
		{"missing", nil},
	} {
		key := p.Key(actorID)
		orig := bytes.Clone(st.objs[key])
		if tc.damage == nil {
			delete(st.objs, key)
		} else {
			st.objs[key] = tc.damage(bytes.Clone(orig))
		}
		err := ReadSegment(ctx, st, actorID, p, func(chain.Event) error { return nil })
		if !errors.Is(err, ErrBroken) {
			t.Fatalf("%s: %v, want ErrBroken", tc.name, err)
		}
		st.objs[key] = orig
	}
}

// An empty history has no segments to read.
func TestSinceEmptyHistory(t *testing.T) {
	st := newMemStore()
	ctx := testCtx(t)
	mustClaim(t, st, actorID, 1)
	h, err := Resolve(ctx, st, actorID)
	if err != nil {
		t.Fatal(err)
	}
	segs, err := h.Since(ctx, 0)
	if err != nil || len(segs) != 0 {
		t.Fatalf("got %v, %v", segs, err)
	}
}
