package archive

import (
	"errors"
	"testing"

	"github.com/troupe-dev/troupe/internal/chain"
)

// VerifyEach shows every event of the history once, in order, across
// epochs, ending at the head Verify reports; an error of the callback
// ends it as it is, not as damage.
func TestVerifyEach(t *testing.T) {
	_, st := newStore(t)
	ctx := testCtx(t)
	buildTwoEpochs(t, st)
	var seqs []uint64
	var last chain.Hash
	rep, err := VerifyEach(ctx, st, actorID, func(e chain.Event) error {
		seqs = append(seqs, e.Seq)
		last = e.Hash
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(seqs)) != rep.Events || len(rep.History.Epochs) < 2 || last != rep.Head {
		t.Fatalf("saw %d events ending at %s; report: %d events over epochs %v, head %s", len(seqs), last, rep.Events, rep.History.Epochs, rep.Head)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("seqs %v are not consecutive", seqs)
		}
	}
	if seqs[len(seqs)-1]+1 != rep.Length {
		t.Fatalf("last seq %d, length %d", seqs[len(seqs)-1], rep.Length)
	}
	stop := errors.New("stdout is closed")
	n := 0
	_, err = VerifyEach(ctx, st, actorID, func(chain.Event) error {
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || errors.Is(err, ErrBroken) {
		t.Fatalf("callback error came back as %v", err)
	}
}
