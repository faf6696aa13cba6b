package host

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/msgwire"
)

// An actor's logs on the peer endpoint (msgwire.LogPattern): the log
// records of the current run's chain as JSON lines, for the gateway to
// pass on to `troupe logs`. The chain is read incrementally (a cursor at
// a record boundary), so a follower costs one stat and one read of the
// new bytes per poll, never a read of the whole chain again.

// logPoll is how often a followed stream looks for new records and for
// the end of the run: a log line reaches the follower within it (plus the
// chain's group commit, 20 ms).
const logPoll = 200 * time.Millisecond

// maxTailBytes bounds the records a tail holds before it writes them: a
// tail of large lines keeps the newest that fit.
const maxTailBytes = 8 << 20

// logs serves GET msgwire.LogPattern: the gateway alone may read an
// actor's logs (it authorized the caller); the target must run here at
// the epoch the gateway routed to, else NotHere.
func (p *peer) logs(w http.ResponseWriter, r *http.Request) {
	cn, err := p.auth.Authenticate(r)
	if err != nil {
		p.refuse(w, err)
		return
	}
	if cn != msgwire.GatewayCN {
		p.refuse(w, &msgwire.AuthError{Reason: msgwire.AuthWrongCN, Msg: "peer " + cn + " may not read actors' logs: only the gateway does"})
		return
	}
	ns, name := r.PathValue("ns"), r.PathValue("name")
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		msgwire.WriteReason(w, http.StatusBadRequest, msgwire.ReasonBadRequest, "bad namespace: "+errs[0])
		return
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		msgwire.WriteReason(w, http.StatusBadRequest, msgwire.ReasonBadRequest, "bad actor name: "+errs[0])
		return
	}
	epoch, err := msgwire.DecodeEpoch(r.Header.Get(msgwire.HeaderEpoch))
	if err != nil {
		msgwire.WriteReason(w, http.StatusBadRequest, msgwire.ReasonBadRequest, err.Error())
		return
	}
	q, err := msgwire.ParseLogQuery(r.URL.RawQuery)
	if err != nil {
		msgwire.WriteReason(w, http.StatusBadRequest, msgwire.ReasonBadRequest, err.Error())
		return
	}
	key := types.NamespacedName{Namespace: ns, Name: name}
	run, err := p.current(key, epoch)
	if err != nil {
		msgwire.WriteError(w, err)
		return
	}
	a := run.getActor()
	if a == nil {
		msgwire.WriteError(w, fmt.Errorf("%w: %s is not running on host %s yet", msgwire.ErrNotHere, key, p.h.cfg.PodName))
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	s := &logStream{
		cur: newLogCursor(a.Chain()), q: q, actorID: run.actorID, epoch: run.epoch,
		ended: func() string { return p.runEnded(run) }, poll: logPoll,
	}
	if p.h.archiver != nil && a.Chain().Path() != "" {
		s.arch = &logArchive{st: p.h.cfg.Archive.Store, actorID: run.actorID, timeout: archiveLogTimeout}
	}
	if err := s.serve(r.Context(), w); err != nil && r.Context().Err() == nil {
		p.h.log.V(1).Info("a log stream ended early", "actor", key.String(), "error", err.Error())
	}
}

// runEnded says why a followed run's stream must end ("" while it goes
// on): the run was replaced (a move, a new generation), is stopping, or
// the actor ended.
func (p *peer) runEnded(r *run) string {
	p.h.mu.Lock()
	cur := p.h.runs[r.key]
	p.h.mu.Unlock()
	if cur != r {
		return "the run ended on host " + p.h.cfg.PodName + " (the actor stopped, moved or was updated)"
	}
	if r.ctx != nil && r.ctx.Err() != nil {
		return "the run is stopping on host " + p.h.cfg.PodName
	}
	r.mu.Lock()
	st := r.state
	r.mu.Unlock()
	if st == stateEnded {
		return "the actor stopped"
	}
	return ""
}

// logStream writes one query's records.
type logStream struct {
	cur     *logCursor
	q       msgwire.LogQuery
	actorID string
	epoch   int64
	// ended says why a followed stream ends, "" while it goes on.
	ended func() string
	poll  time.Duration
	// arch, when set, serves the records before the local chain file's
	// first event from the archive (logs_archive.go).
	arch *logArchive

	line []byte
}

// serve writes the records that match, then, when following, the new
// ones as they come, flushed after every read, until ctx ends (the client
// went away) or ended says so: then a last line with EndOfStream. An error
// is a write that failed or a chain that could not be read; a damaged
// chain ends the stream with a line of StreamError too.
func (s *logStream) serve(ctx context.Context, w http.ResponseWriter) error {
	defer s.cur.close()
	bw := bufio.NewWriterSize(w, 32<<10)
	flush := func() error {
		if err := bw.Flush(); err != nil {
			return err
		}
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		return nil
	}
	fail := func(err error) error {
		line, _ := json.Marshal(msgwire.LogRecord{StreamError: err.Error(), ActorID: s.actorID, Epoch: s.epoch})
		_, _ = bw.Write(append(line, '\n'))
		_ = flush()
		return err
	}
	var tail *tailRing
	if s.q.HasTail {
		tail = &tailRing{max: s.q.Tail}
	}
	emit := func(rec *msgwire.LogRecord) error {
		if tail != nil {
			tail.add(s.encode(rec))
			return nil
		}
		_, err := bw.Write(s.encode(rec))
		return err
	}
	// The archive's records end before the local chain's first event
	// (before), the local ones begin at it: no gap, no duplicate.
	// after=MaxUint64 asks for nothing before the local chain.
	var before, from uint64
	arch := s.arch != nil && (!s.q.HasAfter || s.q.After < math.MaxUint64)
	if arch {
		var err error
		if before, err = s.localFirst(ctx); err != nil {
			return fail(err)
		}
		if s.q.HasAfter {
			from = s.q.After + 1
		}
	}
	if arch && tail == nil && !s.q.Since.IsZero() {
		var err error
		if from, err = s.arch.startSince(ctx, s.q.Since, from, before); err != nil {
			return fail(err)
		}
	}
	if arch && tail == nil {
		err := s.arch.forward(ctx, from, before, s.q.Matches, s.record, func(rec *msgwire.LogRecord) error {
			_, err := bw.Write(s.encode(rec))
			return err
		})
		if err != nil {
			return fail(err)
		}
	}
	if err := s.catchUp(ctx, emit); err != nil {
		return fail(err)
	}
	if tail != nil {
		if arch && len(tail.buf) < tail.max && !tail.dropped {
			// Fewer local records than asked (and all of them kept: one
			// let go for the byte bound would leave a gap): the rest from
			// the archive.
			older, err := s.arch.backward(ctx, from, before, tail.max-len(tail.buf), maxTailBytes-tail.bytes, s.q.Matches, s.record, s.encode)
			if err != nil {
				return fail(err)
			}
			for _, l := range older {
				if _, err := bw.Write(l); err != nil {
					return err
				}
			}
		}
		for _, l := range tail.lines() {
			if _, err := bw.Write(l); err != nil {
				return err
			}
		}
		tail = nil
	}
	if err := flush(); err != nil || !s.q.Follow {
		return err
	}
	t := time.NewTicker(s.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		why := s.ended()
		read := s.read
		if why != "" {
			// The run's last lines too, before the end.
			read = func(emit func(*msgwire.LogRecord) error) error { return s.catchUp(ctx, emit) }
		}
		if err := read(emit); err != nil {
			return fail(err)
		}
		if why != "" {
			end := msgwire.LogRecord{EndOfStream: why, ActorID: s.actorID, Epoch: s.epoch}
			if s.cur.begun {
				end.Seq = s.cur.link.Length - 1 // the last event read
			}
			line, _ := json.Marshal(end)
			_, _ = bw.Write(append(line, '\n'))
			return flush()
		}
		if err := flush(); err != nil {
			return err
		}
	}
}

// catchUp reads what the chain holds now, including the events still in
// its group-commit buffer: it reads again (a bounded number of times)
// until they reached the file.
func (s *logStream) catchUp(ctx context.Context, emit func(*msgwire.LogRecord) error) error {
	_, want := s.cur.c.Head()
	for range 20 {
		if err := s.read(emit); err != nil {
			return err
		}
		if s.cur.link.Length >= want || !sleep(ctx, s.poll/10+time.Millisecond) {
			return nil
		}
	}
	return nil
}

// localFirst is the seq of the local chain file's first event, read from
// the file the cursor goes on with; while the file holds no whole record
// yet (a run just started), the chain's length once it waited a little.
func (s *logStream) localFirst(ctx context.Context) (uint64, error) {
	for range 20 {
		seq, ok, err := s.cur.first()
		if err != nil || ok {
			return seq, err
		}
		if !sleep(ctx, s.poll/10+time.Millisecond) {
			break
		}
	}
	_, n := s.cur.c.Head()
	return n, nil
}

// record is the log record of e, an archived event that epoch wrote.
func (s *logStream) record(e *chain.Event, epoch int64) (msgwire.LogRecord, bool) {
	return logRecord(e, s.actorID, epoch)
}

// read passes the log records of the events appended since the last read
// that match the query to emit.
func (s *logStream) read(emit func(*msgwire.LogRecord) error) error {
	return s.cur.read(func(e chain.Event) error {
		rec, ok := logRecord(&e, s.actorID, s.epoch)
		if !ok || !s.q.Matches(&rec) {
			return nil
		}
		return emit(&rec)
	})
}

func (s *logStream) encode(rec *msgwire.LogRecord) []byte {
	b, _ := json.Marshal(rec) // strings, numbers and a time: cannot fail
	s.line = append(append(s.line[:0], b...), '\n')
	return s.line
}

// logRecord is e's log record when e is a LogEvent.
func logRecord(e *chain.Event, actorID string, epoch int64) (msgwire.LogRecord, bool) {
	if e.Kind != chain.KindLog {
		return msgwire.LogRecord{}, false
	}
	var d struct {
		Level   string `json:"level"`
		Message string `json:"message"`
		Source  string `json:"source"`
		Error   string `json:"error"`
	}
	rec := msgwire.LogRecord{Seq: e.Seq, Time: time.Unix(0, e.Time).UTC(), ActorID: actorID, Epoch: epoch}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		rec.Level, rec.Error = "error", "the chain's log event does not parse: "+err.Error()
		return rec, true
	}
	rec.Level, rec.Source, rec.Error = d.Level, d.Source, d.Error
	rec.Message, rec.Truncated = msgwire.TruncateMessage(d.Message)
	rec.Level, _ = msgwire.TruncateMessage(rec.Level)
	return rec, true
}

// tailRing keeps the last max lines, and no more than maxBytes (0:
// maxTailBytes).
type tailRing struct {
	max      int
	maxBytes int
	buf      [][]byte
	bytes    int
	// dropped: a line was let go for a newer one.
	dropped bool
}

func (t *tailRing) add(line []byte) {
	limit := t.maxBytes
	if limit <= 0 {
		limit = maxTailBytes
	}
	t.buf = append(t.buf, bytes.Clone(line))
	t.bytes += len(line)
	for len(t.buf) > t.max || (t.bytes > limit && len(t.buf) > 1) {
		t.bytes -= len(t.buf[0])
		t.dropped = true
		t.buf[0] = nil
		t.buf = t.buf[1:]
	}
}

func (t *tailRing) lines() [][]byte { return t.buf }

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// logCursor reads a chain's events incrementally: from a file, each read
// verifies and passes on the records after the last whole one it read
// (chain.VerifySegment continuing the last link), and a rotated chain.log
// is followed into its new file; from a memory chain, the retained events
// after the last seq.
type logCursor struct {
	c    *chain.Chain
	path string
	f    *os.File
	off  int64      // where the next record starts in f
	link chain.Link // the last event read: the next one's seq and parent
	// begun: an event was read, so the next continues link.
	begun bool
	// stuck counts reads that found damage where the next record should
	// be: a record being written is whole within a poll or two, damage
	// never.
	stuck int
}

// maxStuckReads is how many reads in a row may find an incomplete record
// before the cursor calls it damage.
const maxStuckReads = 25

func newLogCursor(c *chain.Chain) *logCursor { return &logCursor{c: c, path: c.Path()} }

// close releases the cursor's file.
func (k *logCursor) close() {
	if k.f != nil {
		_ = k.f.Close()
		k.f = nil
	}
}

// read calls fn with every event appended since the last read, in order.
func (k *logCursor) read(fn func(chain.Event) error) error {
	if k.path == "" {
		return k.c.Events(func(e chain.Event) error {
			if k.begun && e.Seq < k.link.Length {
				return nil
			}
			k.link, k.begun = chain.Link{Length: e.Seq + 1, Head: e.Hash}, true
			return fn(e)
		})
	}
	for {
		if k.f == nil {
			ok, err := k.open()
			if err != nil || !ok {
				return err
			}
		}
		if err := k.readFile(fn); err != nil {
			return err
		}
		// chain.log renamed over by a rotation: the old file is whole
		// (Rotate made it durable first), so its rest is read, and the
		// chain goes on in the new one, which continues the link.
		st, err := os.Stat(k.path)
		if err != nil {
			return nil // between the link and the rename: the next read sees it
		}
		fst, err := k.f.Stat()
		if err != nil {
			return fmt.Errorf("reading chain %s: %w", k.path, err)
		}
		if os.SameFile(st, fst) {
			return nil
		}
		if err := k.readFile(fn); err != nil {
			return err
		}
		k.close()
	}
}

// errPeeked stops first's read at the first record.
var errPeeked = errors.New("peeked")

// first returns the seq of the first event of the chain file the cursor
// reads (opening it, before any read); ok is false while the file holds
// no whole record, or when the chain has no file.
func (k *logCursor) first() (uint64, bool, error) {
	if k.path == "" {
		return 0, false, nil
	}
	if k.f == nil {
		ok, err := k.open()
		if err != nil || !ok {
			return 0, false, err
		}
	}
	st, err := k.f.Stat()
	if err != nil {
		return 0, false, fmt.Errorf("reading chain %s: %w", k.path, err)
	}
	hdr := int64(len(chain.Magic))
	var seq uint64
	found := false
	_, err = chain.VerifySegment(io.NewSectionReader(k.f, hdr, max(st.Size()-hdr, 0)), nil, func(e chain.Event) error {
		seq, found = e.Seq, true
		return errPeeked
	})
	if found {
		return seq, true, nil
	}
	var ce *chain.CorruptError
	if err == nil || errors.Is(err, chain.ErrEmptySegment) || errors.As(err, &ce) {
		return 0, false, nil // a first record being written
	}
	return 0, false, fmt.Errorf("reading chain %s: %w", k.path, err)
}

// open opens the chain file and checks its header; ok is false while it
// is still being created.
func (k *logCursor) open() (bool, error) {
	f, err := os.Open(k.path)
	if err != nil {
		return false, fmt.Errorf("reading chain: %w", err)
	}
	hdr := make([]byte, len(chain.Magic))
	if _, err := io.ReadFull(f, hdr); err != nil {
		_ = f.Close()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return false, nil
		}
		return false, fmt.Errorf("reading chain %s: %w", k.path, err)
	}
	if string(hdr) != chain.Magic {
		_ = f.Close()
		return false, fmt.Errorf("reading chain %s: not a chain file of format version %d", k.path, chain.FormatVersion)
	}
	k.f, k.off, k.stuck = f, int64(len(chain.Magic)), 0
	return true, nil
}

func (k *logCursor) readFile(fn func(chain.Event) error) error {
	st, err := k.f.Stat()
	if err != nil {
		return fmt.Errorf("reading chain %s: %w", k.path, err)
	}
	if st.Size() <= k.off {
		return nil
	}
	var prev *chain.Link
	if k.begun {
		prev = &k.link
	}
	before := k.off
	_, err = chain.VerifySegment(io.NewSectionReader(k.f, k.off, st.Size()-k.off), prev, func(e chain.Event) error {
		k.off += int64(chain.RecordSize(e.Kind, e.Op, len(e.Data)))
		k.link, k.begun = chain.Link{Length: e.Seq + 1, Head: e.Hash}, true
		return fn(e)
	})
	var ce *chain.CorruptError
	switch {
	case err == nil, errors.Is(err, chain.ErrEmptySegment):
		k.stuck = 0
		return nil
	case errors.As(err, &ce):
		// Most likely a record half written: it is whole at the next read.
		if k.off > before {
			k.stuck = 0
		} else if k.stuck++; k.stuck > maxStuckReads {
			return fmt.Errorf("reading chain %s at offset %d: %w", k.path, k.off, err)
		}
		return nil
	}
	return err
}
