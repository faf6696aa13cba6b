package archiver

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/chain"
)

// Defaults of Options.
const (
	// DefaultConcurrency bounds the uploads a host has in flight: an
	// upload is 3-4 small requests, so at one seal per actor per recovery
	// point 16 keep up with thousands of actors on a store tens of
	// milliseconds away.
	DefaultConcurrency = 16
	// DefaultAttemptTimeout bounds one upload (segment, state, manifest):
	// a store that hangs is a store that is down.
	DefaultAttemptTimeout = 30 * time.Second
	// minBackoff and maxBackoff bound the wait after a failed upload.
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// Options configure a host's Archiver.
type Options struct {
	// RecoveryPoint is the longest an event waits on the node before it
	// is in the archive (while the store answers); required.
	RecoveryPoint time.Duration
	// SegmentBytes seals a segment once this many bytes wait; required.
	SegmentBytes int64
	// Concurrency bounds the uploads in flight; 0 is DefaultConcurrency.
	Concurrency int
	// AttemptTimeout bounds one upload; 0 is DefaultAttemptTimeout.
	AttemptTimeout time.Duration
	// LocalTail is about how many bytes of an actor's archived chain its
	// node keeps (chain.log and the rotated files the archive holds
	// together): a running actor's chain.log is rotated once it passes
	// half of it, and rotated files the archive holds are removed, oldest
	// first, while the actor's files pass it. 0 or less rotates nothing.
	LocalTail int64
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
	Logger     logr.Logger
}

// Source is a running actor as the shipper sees it: *actorhost.Actor.
type Source interface {
	// ArchivePoint makes the chain durable and returns its end with the
	// state it records (actorhost.Actor.ArchivePoint); with rotate, it
	// may also rotate the chain file there (actorhost.Actor.RotatePoint),
	// which the point's Rotated says.
	ArchivePoint(ctx context.Context, rotate bool) (actorhost.ArchivePoint, error)
	// Progress returns the chain's length and its file's size now: cheap,
	// called at every scan.
	Progress() (length uint64, size int64)
}

// ActorSource adapts a running actor.
func ActorSource(a *actorhost.Actor) Source { return actorSource{a} }

type actorSource struct{ a *actorhost.Actor }

func (s actorSource) ArchivePoint(ctx context.Context, rotate bool) (actorhost.ArchivePoint, error) {
	if rotate {
		return s.a.RotatePoint(ctx)
	}
	return s.a.ArchivePoint(ctx)
}

// leftoverSource adapts a leftover chain, which is never rotated: no run
// appends to it.
type leftoverSource struct{ *actorhost.Leftover }

func (s leftoverSource) ArchivePoint(ctx context.Context, _ bool) (actorhost.ArchivePoint, error) {
	return s.Leftover.ArchivePoint(ctx)
}

func (s actorSource) Progress() (uint64, int64) {
	_, n := s.a.Head()
	return n, s.a.Chain().Size()
}

// Archiver runs the host's shippers: one loop scans them and starts the
// uploads that are due, at most Concurrency at once.
type Archiver struct {
	opts    Options
	scan    time.Duration
	sem     chan struct{}
	metrics *metrics
	log     logr.Logger

	mu       sync.Mutex
	shippers map[*Shipper]struct{}
}

// New returns an Archiver; Run drives it.
func New(opts Options) (*Archiver, error) {
	if opts.RecoveryPoint <= 0 || opts.SegmentBytes <= 0 {
		return nil, fmt.Errorf("archiver: recovery point %s and segment size %d must be positive", opts.RecoveryPoint, opts.SegmentBytes)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = DefaultAttemptTimeout
	}
	ar := &Archiver{opts: opts, sem: make(chan struct{}, opts.Concurrency), log: opts.Logger, shippers: map[*Shipper]struct{}{}}
	// Scanning 1,000 shippers is a few microseconds each time; a twentieth
	// of the recovery point keeps the seal within 5% of when it is due.
	ar.scan = min(max(opts.RecoveryPoint/20, 10*time.Millisecond), 500*time.Millisecond)
	ar.metrics = newMetrics(ar)
	if opts.Registerer != nil {
		if err := ar.metrics.register(opts.Registerer); err != nil {
			return nil, err
		}
	}
	return ar, nil
}

// Run scans the shippers until ctx ends, starting the uploads that are
// due. Flush works without it (a host shutting down flushes after its
// loops stopped).
func (ar *Archiver) Run(ctx context.Context) {
	t := time.NewTicker(ar.scan)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		for _, s := range ar.list() {
			if s.due(now) {
				go ar.job(ctx, s)
			}
			s.checkBehind(now)
		}
	}
}

func (ar *Archiver) list() []*Shipper {
	ar.mu.Lock()
	defer ar.mu.Unlock()
	out := make([]*Shipper, 0, len(ar.shippers))
	for s := range ar.shippers {
		out = append(out, s)
	}
	return out
}

// job takes a point and uploads what is sealed, for one shipper that due
// marked busy.
func (ar *Archiver) job(ctx context.Context, s *Shipper) {
	defer s.idle()
	select {
	case ar.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-ar.sem }()
	s.upMu.Lock()
	defer s.upMu.Unlock()
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		return // Flush has uploaded, or Close gave up: nothing more here
	}
	s.step(ctx)
}

// oldest is the age of the oldest event not archived yet, over all
// shippers.
func (ar *Archiver) oldest() time.Duration {
	now := time.Now()
	var d time.Duration
	for _, s := range ar.list() {
		s.mu.Lock()
		if !s.since.IsZero() && !s.fenced {
			d = max(d, now.Sub(s.since))
		}
		s.mu.Unlock()
	}
	return d
}

// Shipper uploads one actor's chain under one epoch's Writer.
type Shipper struct {
	ar     *Archiver
	w      *archive.Writer
	src    Source
	dir    string
	report func(Status)
	log    logr.Logger

	// upMu serializes uploads (the Writer is not safe for concurrent use):
	// a job of the scan, or Flush. Guards the fields up to mu.
	upMu   sync.Mutex
	tipOff int64   // where the record after the archive's tip starts in chain.log
	points []point // sealed, not uploaded yet, oldest first
	// archived is the length of the chain the archive holds.
	archived atomic.Uint64

	mu sync.Mutex // guards the fields below
	// busy: a job is scheduled or running; closing: Flush or Close began,
	// the scan leaves it alone.
	busy, closing bool
	// seen is the chain length the shipper knows of (archived, sealed or
	// seen by a scan); since is when the oldest event not archived was
	// first seen (zero: none); due at since+wait.
	seen  uint64
	since time.Time
	wait  time.Duration
	// sealedSize is the file size the last point (or the tip) ends at;
	// sealedOnce is set by the first seal.
	sealedSize int64
	sealedOnce bool
	// failing is when uploads began to fail (zero: they succeed), retry
	// when the next may be tried, backoff the wait after the next failure.
	failing, retry time.Time
	backoff        time.Duration
	lastErr        error
	fenced         bool
	// reported is the status last reported.
	reported Status
}

// point is a sealed segment: the records of p.Path from from up to
// p.Offset.
type point struct {
	p     actorhost.ArchivePoint
	from  int64
	taken time.Time
}

// Status is how far an actor's archive is, for its Archived condition.
type Status struct {
	// Reason is v1alpha1.ReasonArchiveUpToDate, ReasonArchiveBehind,
	// ReasonArchiveUnavailable or ReasonArchiveFenced.
	Reason  string
	Message string
	// Warn asks for a Warning Event (uploads have failed for longer than
	// the recovery point; reported once a failing spell).
	Warn bool
}

// Ship starts uploading src's chain with w, an epoch's claimed Writer: it
// finds where the archive's tip is in the chain file (a host that started
// again on the same node continues its epoch's manifest without uploading
// anything twice) and from then on the Archiver's scan seals and uploads.
// report is called when the actor's archive status changes.
func (ar *Archiver) Ship(ctx context.Context, w *archive.Writer, src Source, log logr.Logger, report func(Status)) (*Shipper, error) {
	p, err := src.ArchivePoint(ctx, false)
	if err != nil {
		return nil, err
	}
	var tip *chain.Link
	if l, ok := w.Tip(); ok {
		tip = &l
	}
	// The tip is in chain.log, or in a rotated file the archive does not
	// hold the end of yet (the host stopped before that upload): those
	// segments are queued first.
	var queued []point
	off, err := locate(p.Path, tip)
	if tip == nil && err == nil {
		// Nothing archived yet: a chain rotated before its first upload
		// begins in the oldest rotated file, not in chain.log.
		if queued, err = rotatedPoints(filepath.Dir(p.Path), nil); err != nil {
			return nil, err
		}
	} else if err != nil {
		var rerr error
		if queued, rerr = rotatedPoints(filepath.Dir(p.Path), tip); rerr != nil {
			return nil, errors.Join(err, rerr)
		}
		if queued == nil {
			return nil, err
		}
		off = int64(len(chain.Magic))
	}
	s := &Shipper{ar: ar, w: w, src: src, dir: filepath.Dir(p.Path), report: report, log: log, tipOff: off, sealedSize: off, points: queued}
	if tip != nil {
		s.seen = tip.Length
		s.archived.Store(tip.Length)
	}
	s.prune() // a tail lowered since the last run, or files its end did not get to
	ar.mu.Lock()
	ar.shippers[s] = struct{}{}
	ar.mu.Unlock()
	ar.metrics.actors.Inc()
	return s, nil
}
