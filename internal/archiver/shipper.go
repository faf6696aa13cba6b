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
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/archive"
)

// sealAt is how far into the recovery point a segment is sealed: late
// enough that one upload a recovery point carries what an actor wrote in
// it (the requests are batched), early enough that the upload is done
// before the recovery point passes; the rest of the window is jitter, so
// actors started together do not upload in lockstep.
const (
	sealFrom   = 0.75
	sealJitter = 0.15
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
			s.wait = time.Duration(float64(rp)*(sealFrom+sealJitter*rand.Float64())) - s.ar.scan
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
// SegmentBytes queued, not one per recovery point. Called with upMu held.
func (s *Shipper) seal(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, s.ar.opts.AttemptTimeout)
	defer cancel()
	p, err := s.src.ArchivePoint(pctx)
	if err != nil {
		return fmt.Errorf("sealing a segment: %w", err)
	}
	end := s.tipOff
	if n := len(s.points); n > 0 {
		end = s.points[n-1].p.Offset
	}
	if p.Offset <= end {
		return nil
	}
	pt := point{p: p, taken: time.Now()}
	start := s.tipOff
	if n := len(s.points); n > 1 {
		start = s.points[n-2].p.Offset
	}
	if n := len(s.points); n > 0 && p.Offset-start <= s.ar.opts.SegmentBytes {
		s.points[n-1] = pt
	} else {
		s.points = append(s.points, pt)
	}
	s.mu.Lock()
	s.sealedSize = p.Offset
	s.seen = max(s.seen, p.End.Length)
	s.mu.Unlock()
	return nil
}

// upload appends the queued segments in order. Called with upMu held.
func (s *Shipper) upload(ctx context.Context) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("opening the chain: %w", err)
	}
	defer f.Close()
	for len(s.points) > 0 {
		pt := s.points[0]
		if err := s.append(ctx, f, pt.p); err != nil {
			return err
		}
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
	return nil
}

// append uploads the records from the tip to p.
func (s *Shipper) append(ctx context.Context, f *os.File, p actorhost.ArchivePoint) error {
	n := p.Offset - s.tipOff
	if n > archive.MaxSegmentBytes {
		return fmt.Errorf("%d bytes wait to be archived, more than a segment may hold (%d)", n, archive.MaxSegmentBytes)
	}
	recs := make([]byte, n)
	if _, err := f.ReadAt(recs, s.tipOff); err != nil && !errors.Is(err, io.EOF) {
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
	msg := "the archive holds every event older than the recovery point"
	if recovered {
		s.log.Info("archiving works again")
	}
	s.say(Status{Reason: v1alpha1.ReasonArchiveUpToDate, Message: msg})
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
