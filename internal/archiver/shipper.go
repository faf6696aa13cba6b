package archiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/chain"
)

// sealAt is how far into the recovery point a segment is sealed: late
// enough that one upload a recovery point carries what an actor wrote in
// it (the requests are batched), early enough that the upload is done
// before the recovery point passes; the rest of the window is jitter, so
// actors started together do not upload in lockstep.
const (
	sealFrom      = 0.75
	sealJitter    = 0.15
	firstSealFrom = 0.1
)

// due reports whether s should upload now, and marks it busy when so. It
// also notes when events not archived yet were first seen.
func (s *Shipper) due(now time.Time) bool {
	length, size := s.src.Progress()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy || s.closing || s.fenced {
		return false
	}
	if length > s.seen {
		if s.since.IsZero() {
			s.since = now
			rp := s.ar.opts.RecoveryPoint
			frac := sealFrom + sealJitter*rand.Float64()
			if !s.sealedOnce {
				// The first seal is spread over most of the recovery
				// point: a host starting 1,000 actors together would
				// otherwise seal them all within 15% of it, a burst its
				// uploads take longer than the recovery point to drain.
				// Later seals follow each actor's own upload, so they stay
				// spread.
				frac = firstSealFrom + (sealFrom+sealJitter-firstSealFrom)*rand.Float64()
			}
			s.wait = time.Duration(float64(rp)*frac) - s.ar.scan
		}
		s.seen = length
	}
	if s.since.IsZero() {
		return false
	}
	byAge := now.Sub(s.since) >= s.wait
	bySize := size-s.sealedSize >= s.ar.opts.SegmentBytes
	if !byAge && !bySize {
		return false
	}
	if !s.retry.IsZero() && now.Before(s.retry) && !bySize {
		// Backing off; a segment's worth of bytes is still sealed (not
		// uploaded) so that a segment never grows past SegmentBytes while
		// the store is down.
		return false
	}
	s.busy = true
	return true
}

func (s *Shipper) idle() {
	s.mu.Lock()
	s.busy = false
	s.mu.Unlock()
}

// step seals a point and uploads the sealed segments unless backing off.
// Called with upMu held.
func (s *Shipper) step(ctx context.Context) {
	if err := s.seal(ctx); err != nil {
		s.failed(err)
		return
	}
	s.mu.Lock()
	backingOff := !s.retry.IsZero() && time.Now().Before(s.retry)
	s.mu.Unlock()
	if backingOff {
		return
	}
	if err := s.upload(ctx); err != nil {
		s.failed(err)
		return
	}
	s.succeeded()
}

// seal takes an archive point and queues it: it replaces the last queued
// point when the two segments together stay within SegmentBytes, so that
// a store that is down for long leaves a few segments of about
// SegmentBytes queued, not one per recovery point. With a local tail it
// asks for the chain file to be rotated at the point once the file holds
// half the tail, when nothing else waits (so that at most one rotated
// file the archive lacks is on the node, and each rotated point is a
// segment of its own). Called with upMu held.
func (s *Shipper) seal(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, s.ar.opts.AttemptTimeout)
	defer cancel()
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	rotate := false
	if tail := s.ar.opts.LocalTail; tail > 0 && !closing && len(s.points) == 0 {
		_, size := s.src.Progress()
		rotate = size >= max(tail/2, int64(len(chain.Magic))+1)
	}
	p, err := s.src.ArchivePoint(pctx, rotate)
	if err != nil {
		return fmt.Errorf("sealing a segment: %w", err)
	}
	start := s.nextFrom()
	if p.Offset <= start {
		if p.Rotated {
			// Rotated with nothing new: the archive holds the whole file.
			s.tipOff = int64(len(chain.Magic))
			s.mu.Lock()
			s.sealedSize = s.tipOff
			s.mu.Unlock()
			s.prune()
		}
		return nil
	}
	pt := point{p: p, from: start, taken: time.Now()}
	if n := len(s.points); n > 0 && !p.Rotated && !s.points[n-1].p.Rotated && p.Offset-s.points[n-1].from <= s.ar.opts.SegmentBytes {
		pt.from = s.points[n-1].from
		s.points[n-1] = pt
	} else {
		s.points = append(s.points, pt)
	}
	s.mu.Lock()
	s.sealedSize, s.sealedOnce = p.Offset, true
	if p.Rotated {
		s.sealedSize = int64(len(chain.Magic))
	}
	s.seen = max(s.seen, p.End.Length)
	s.mu.Unlock()
	return nil
}

// nextFrom is where the segment after the queued ones starts in
// chain.log. Called with upMu held.
func (s *Shipper) nextFrom() int64 {
	if n := len(s.points); n > 0 {
		if s.points[n-1].p.Rotated {
			return int64(len(chain.Magic))
		}
		return s.points[n-1].p.Offset
	}
	return s.tipOff
}

// upload appends the queued segments in order. Called with upMu held.
func (s *Shipper) upload(ctx context.Context) error {
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	rotated := false
	for len(s.points) > 0 {
		pt := s.points[0]
		if f == nil || f.Name() != pt.p.Path {
			if f != nil {
				f.Close()
			}
			var err error
			if f, err = os.Open(pt.p.Path); err != nil {
				f = nil
				return fmt.Errorf("opening the chain: %w", err)
			}
		}
		if err := s.append(ctx, f, pt); err != nil {
			return err
		}
		rotated = rotated || pt.p.Rotated
		s.points = s.points[1:]
		s.mu.Lock()
		if pt.p.End.Length >= s.seen {
			s.since = time.Time{}
		} else {
			// The events after the point were seen after it was taken.
			s.since = pt.taken
		}
		s.mu.Unlock()
	}
	if rotated {
		s.prune()
	}
	return nil
}

// append uploads the records of pt.
func (s *Shipper) append(ctx context.Context, f *os.File, pt point) error {
	p := pt.p
	n := p.Offset - pt.from
	if n > archive.MaxSegmentBytes {
		return fmt.Errorf("%d bytes wait to be archived, more than a segment may hold (%d)", n, archive.MaxSegmentBytes)
	}
	recs := make([]byte, n)
	if _, err := f.ReadAt(recs, pt.from); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading the chain: %w", err)
	}
	actx, cancel := context.WithTimeout(ctx, s.ar.opts.AttemptTimeout)
	defer cancel()
	begin := time.Now()
	seg, err := s.w.Append(actx, recs, archive.State{HasState: p.HasState, Data: p.State})
	s.ar.metrics.seconds.Observe(time.Since(begin).Seconds())
	if err != nil {
		return err
	}
	s.ar.metrics.uploads.WithLabelValues(resultOK).Inc()
	s.ar.metrics.bytes.Add(float64(n))
	s.tipOff = p.Offset
	if p.Rotated {
		s.tipOff = int64(len(chain.Magic))
	}
	s.archived.Store(p.End.Length)
	s.log.V(2).Info("archived a segment", "first", seg.First, "length", seg.Length, "bytes", seg.Bytes)
	return nil
}

// failed notes a failed seal or upload: backoff, and the status once
// uploads have failed for longer than the recovery point; ErrFenced stops
// the shipper for good.
func (s *Shipper) failed(err error) {
	now := time.Now()
	s.mu.Lock()
	if errors.Is(err, archive.ErrFenced) {
		s.ar.metrics.uploads.WithLabelValues(resultFenced).Inc()
		s.fenced, s.since = true, time.Time{}
		s.mu.Unlock()
		s.log.Info("the actor's archive was claimed by a later epoch: this host no longer archives it", "error", err.Error())
		s.say(Status{Reason: v1alpha1.ReasonArchiveFenced, Message: fmt.Sprintf(
			"a later epoch claimed the actor's archive: this host lost the assignment, and what it uploads is no longer part of the history (%v)", err)})
		return
	}
	s.ar.metrics.uploads.WithLabelValues(resultError).Inc()
	if s.failing.IsZero() {
		s.failing = now
		s.backoff = minBackoff
	} else {
		s.backoff = min(2*s.backoff, maxBackoff)
	}
	s.retry = now.Add(time.Duration(float64(s.backoff) * (0.8 + 0.4*rand.Float64())))
	s.lastErr = err
	failingFor := now.Sub(s.failing)
	since := s.since
	s.mu.Unlock()
	s.log.V(1).Info("archiving failed; retrying", "error", err.Error(), "failingFor", failingFor)
	if failingFor >= s.ar.opts.RecoveryPoint {
		msg := fmt.Sprintf("uploads to the archive have failed for %s; the actor runs on, its events wait on the node", failingFor.Round(time.Second))
		if !since.IsZero() {
			msg += fmt.Sprintf(" (the oldest not archived was appended about %s ago)", now.Sub(since).Round(time.Second))
		}
		s.say(Status{Reason: v1alpha1.ReasonArchiveUnavailable, Message: msg + ": " + err.Error(), Warn: true})
	}
}

func (s *Shipper) succeeded() {
	s.mu.Lock()
	recovered := !s.failing.IsZero()
	s.failing, s.retry, s.lastErr = time.Time{}, time.Time{}, nil
	s.mu.Unlock()
	if recovered {
		s.log.Info("archiving works again")
	}
	if !s.checkBehind(time.Now()) {
		s.say(Status{Reason: v1alpha1.ReasonArchiveUpToDate, Message: "the archive holds every event older than the recovery point"})
	}
}

// checkBehind says Behind when uploads succeed but an event older than the
// recovery point (and a scan, the granularity at which the shipper sees
// events) is not archived yet: the recovery point is not held, because the
// store or the host's upload slots are short of capacity, not because they
// fail (failed says that). The next upload that leaves nothing that old
// says UpToDate again. No Event: when one actor is behind, its neighbours
// usually are too, and a Warning each would add API writes to a host
// already short of capacity; the condition and
// troupe_host_archive_oldest_unarchived_event_age_seconds say it.
func (s *Shipper) checkBehind(now time.Time) bool {
	rp := s.ar.opts.RecoveryPoint
	s.mu.Lock()
	behind := !s.since.IsZero() && s.failing.IsZero() && !s.fenced && !s.closing && now.Sub(s.since) > rp+s.ar.scan
	age := now.Sub(s.since)
	s.mu.Unlock()
	if behind {
		s.say(Status{Reason: v1alpha1.ReasonArchiveBehind, Message: fmt.Sprintf(
			"the archive is behind: an event appended %s ago is not archived yet, past the recovery point of %s; uploads succeed, "+
				"but not as fast as the actors write (the store, or the host's upload slots, archive.uploads, are short of capacity)",
			age.Round(100*time.Millisecond), rp)})
	}
	return behind
}

// say reports st when it changes the condition: the reason, and a Warning
// once a failing spell.
func (s *Shipper) say(st Status) {
	s.mu.Lock()
	prev := s.reported
	if prev.Reason == st.Reason {
		s.mu.Unlock()
		return
	}
	s.reported = st
	s.mu.Unlock()
	if s.report != nil {
		s.report(st)
	}
}

// Flush uploads everything the actor's chain holds, for a lifecycle step
// (stop, suspend, delete, shutdown, a move) that must not report done
// before: the actor's run must have ended (its chain no longer grows). It
// retries with backoff until ctx ends and returns the last error then; the
// shipper is done either way (Close).
func (s *Shipper) Flush(ctx context.Context) error {
	defer s.Close()
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	select {
	case s.ar.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("waiting for an upload slot: %w", ctx.Err())
	}
	defer func() { <-s.ar.sem }()
	s.upMu.Lock()
	defer s.upMu.Unlock()
	backoff := minBackoff
	for {
		s.mu.Lock()
		fenced := s.fenced
		s.mu.Unlock()
		if fenced {
			return fmt.Errorf("flushing: %w", archive.ErrFenced)
		}
		err := s.seal(ctx)
		if err == nil {
			err = s.upload(ctx)
		}
		if err == nil {
			s.succeeded()
			return nil
		}
		s.failed(err)
		if errors.Is(err, archive.ErrFenced) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(float64(backoff) * (0.8 + 0.4*rand.Float64()))):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// Close stops shipping without uploading more.
func (s *Shipper) Close() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.ar.mu.Lock()
	_, ok := s.ar.shippers[s]
	delete(s.ar.shippers, s)
	s.ar.mu.Unlock()
	if ok {
		s.ar.metrics.actors.Dec()
	}
}

// Archived returns the length of the chain the archive holds.
func (s *Shipper) Archived() uint64 { return s.archived.Load() }
