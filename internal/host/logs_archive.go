package host

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/msgwire"
	"github.com/troupe-dev/troupe/internal/objstore"
)

// The log records a node no longer holds: after a move the new host's
// chain begins with a SegmentStart (the events before it are only in the
// archive), and the rotated files of a chain are pruned once archived.
// With an archive, a log stream reads the records before the first event
// of the local chain file from the archived segments of the same actor ID,
// checked as `troupe chain verify` checks them, then goes on with the local
// chain: the archive's side ends before that first event, the local side
// begins at it, so no record is missing at the boundary nor seen twice.
// Without an archive, those records are not served.

// archiveLogTimeout bounds each read of the archive (the manifests, then
// each segment): a store that hangs ends the stream with a StreamError
// line, and the reader reconnects or reports.
const archiveLogTimeout = 30 * time.Second

// logArchive reads one actor's archived log records.
type logArchive struct {
	st      objstore.Store
	actorID string
	timeout time.Duration

	h *archive.History
}

// history resolves the actor's history once; nil (no error) when the
// archive holds none.
func (la *logArchive) history(ctx context.Context) (*archive.History, error) {
	if la.h != nil {
		return la.h, nil
	}
	rctx, cancel := context.WithTimeout(ctx, la.timeout)
	defer cancel()
	h, err := archive.Resolve(rctx, la.st, la.actorID)
	switch {
	case errors.Is(err, archive.ErrNoHistory):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading the archived log records: %w", err)
	}
	la.h = h
	return h, nil
}

// since returns the segments from the one holding seq on.
func (la *logArchive) since(ctx context.Context, seq uint64) ([]archive.Placed, error) {
	h, err := la.history(ctx)
	if err != nil || h == nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, la.timeout)
	defer cancel()
	segs, err := h.Since(rctx, seq)
	if err != nil {
		return nil, fmt.Errorf("reading the archived log records: %w", err)
	}
	return segs, nil
}

// read downloads and checks p, passing its events to fn.
func (la *logArchive) read(ctx context.Context, p *archive.Placed, fn func(chain.Event) error) error {
	rctx, cancel := context.WithTimeout(ctx, la.timeout)
	defer cancel()
	if err := archive.ReadSegment(rctx, la.st, la.actorID, p, fn); err != nil {
		return fmt.Errorf("reading the archived log records of seqs %d-%d: %w", p.First, p.Length-1, err)
	}
	return nil
}

// forward passes to emit, in seq order, the archived records from seq
// from to before (excluded) that match; rec makes an event's record,
// with the epoch that wrote it.
func (la *logArchive) forward(ctx context.Context, from, before uint64, match func(*msgwire.LogRecord) bool, rec func(*chain.Event, int64) (msgwire.LogRecord, bool), emit func(*msgwire.LogRecord) error) error {
	if from >= before {
		return nil
	}
	segs, err := la.since(ctx, from)
	if err != nil {
		return err
	}
	for i := range segs {
		p := &segs[i]
		if p.First >= before {
			break
		}
		if p.Length <= from {
			continue
		}
		err := la.read(ctx, p, func(e chain.Event) error {
			if e.Seq < from || e.Seq >= before {
				return nil
			}
			r, ok := rec(&e, p.Epoch)
			if !ok || !match(&r) {
				return nil
			}
			return emit(&r)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// backward returns the encoded lines of the last n archived records
// before seq before (and after from, included) that match, oldest first,
// reading segments newest first until it has them: at most n lines and
// maxBytes bytes (the oldest are dropped first).
func (la *logArchive) backward(ctx context.Context, from, before uint64, n, maxBytes int, match func(*msgwire.LogRecord) bool, rec func(*chain.Event, int64) (msgwire.LogRecord, bool), encode func(*msgwire.LogRecord) []byte) ([][]byte, error) {
	var out [][]byte
	size := 0
	for cur := before; cur > from && len(out) < n && size < maxBytes; {
		segs, err := la.since(ctx, cur-1)
		if err != nil {
			return nil, err
		}
		if len(segs) == 0 || segs[0].First >= cur {
			break // the history begins at or after cur
		}
		p := &segs[0]
		ring := &tailRing{max: n - len(out), maxBytes: maxBytes - size}
		err = la.read(ctx, p, func(e chain.Event) error {
			if e.Seq < from || e.Seq >= cur {
				return nil
			}
			r, ok := rec(&e, p.Epoch)
			if ok && match(&r) {
				ring.add(encode(&r))
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		// The ring keeps its newest line whatever its size: here a line
		// over what is left does not fit, and the older ones need not be
		// read.
		lines, b := ring.lines(), ring.bytes
		for len(lines) > 0 && b > maxBytes-size {
			b -= len(lines[0])
			lines = lines[1:]
		}
		out = append(lines, out...)
		size += b
		if ring.dropped || len(lines) < len(ring.lines()) {
			break
		}
		cur = p.First
	}
	return out, nil
}

// errFirstSeen stops a read at a segment's first event.
var errFirstSeen = errors.New("first event seen")

// startSince is where a forward read for the records logged at or after
// since begins: the first seq of the newest segment before seq before
// whose first event is older than since (the history's first when none
// is), found reading segments newest first, so that since= on a long
// history does not read it all. Times are taken to rise with seq: a
// record logged under a clock behind an earlier one may be missed.
func (la *logArchive) startSince(ctx context.Context, since time.Time, from, before uint64) (uint64, error) {
	for cur := before; cur > from; {
		segs, err := la.since(ctx, cur-1)
		if err != nil {
			return 0, err
		}
		if len(segs) == 0 || segs[0].First >= cur {
			return cur, nil // the history begins at or after cur
		}
		p := &segs[0]
		var first time.Time
		err = la.read(ctx, p, func(e chain.Event) error {
			first = time.Unix(0, e.Time)
			return errFirstSeen
		})
		if err != nil && !errors.Is(err, errFirstSeen) {
			return 0, err
		}
		if first.Before(since) {
			return max(p.First, from), nil
		}
		cur = p.First
	}
	return from, nil
}
