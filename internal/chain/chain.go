package chain

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/troupe-dev/troupe/internal/fsync"
)

// FileName is the name of the chain file inside an actor's directory.
const FileName = "chain.log"

// Durability says when a durable chain's appends reach stable storage.
type Durability int

const (
	// GroupCommit buffers appends and fsyncs every SyncInterval and at every
	// lifecycle event: an append returns before its event is durable, and a
	// crash loses at most the last interval.
	GroupCommit Durability = iota
	// Sync fsyncs before every append returns.
	Sync
)

// String returns the name ParseDurability accepts.
func (d Durability) String() string {
	switch d {
	case GroupCommit:
		return "group-commit"
	case Sync:
		return "sync"
	}
	return fmt.Sprintf("Durability(%d)", int(d))
}

// ParseDurability parses "group-commit" (or "") and "sync".
func ParseDurability(s string) (Durability, error) {
	switch s {
	case "", "group-commit", "groupcommit", "GroupCommit":
		return GroupCommit, nil
	case "sync", "Sync":
		return Sync, nil
	}
	return 0, fmt.Errorf("unknown chain durability %q: want group-commit or sync", s)
}

// DefaultSyncInterval is the group-commit fsync interval.
const DefaultSyncInterval = 20 * time.Millisecond

// Options configure a chain. The zero value is a group-commit chain with the
// default interval and the wall clock.
type Options struct {
	// Durability applies to chains from Open; memory chains ignore it.
	Durability Durability
	// SyncInterval is the group-commit fsync interval; 0 means
	// DefaultSyncInterval.
	SyncInterval time.Duration
	// Now is the clock events are stamped with; nil means time.Now.
	Now func() time.Time
	// Retain is how many of the most recent events a memory chain keeps for
	// Events; 0 keeps every event. A bounded memory chain costs no
	// allocation per append once its ring is full.
	Retain int
	// Floor is what the caller knows the file held durably before: Open
	// refuses a chain whose valid events end before it. Zero knows
	// nothing.
	Floor Floor
	// Observe, when set, is called by Open with each valid event it reads
	// from an existing file, in order, before it decides what to cut;
	// Event.Data is valid only during the call.
	Observe func(Event)
	// BeforeWrite, when set, is called before a durable chain hands
	// buffered events to its file (whichever path writes them: the group
	// commit, a full buffer, Sync, a lifecycle event, Close). An error
	// stops the write: the events are never written, and the chain fails
	// as after a failed write. It runs with the chain's lock held, so it
	// must not call the chain's methods; what it may do to the chain,
	// Write offers. Something that must be on disk before the events
	// that speak of it (an actor's saved state) is written here.
	BeforeWrite func(Write) error
}

// Write is a write of buffered events that Options.BeforeWrite is about
// to let through: the events From up to (not including) To.
type Write struct {
	From, To uint64
	c        *Chain
}

// SyncWritten makes every event already in the file, those before From,
// durable (an fsync, unless one already covered them) and returns the
// chain's durable length, which is then From.
func (w Write) SyncWritten() (uint64, error) {
	c := w.c
	if c.durable < w.From {
		if err := c.syncFile(c.f); err != nil {
			return c.durable, fmt.Errorf("syncing %s: %w", c.path, err)
		}
		// What the file holds is all durable now; a tick fsyncing outside
		// the lock covers nothing more.
		c.durable, c.dirty = w.From, false
	}
	return c.durable, nil
}

// Durable returns the chain's durable length without syncing anything:
// what the last completed fsync covers, which may be less than From.
func (w Write) Durable() uint64 { return w.c.durable }

// DirSynced tells the chain that its directory's entries were made
// durable after its file was created (the caller synced the directory
// for a file of its own there), so the chain's next fsync need not sync
// the directory as well. It is what lets an actor's first start sync the
// directory once for its chain, its identity and its state slot.
func (w Write) DirSynced() { w.c.needDir = false }

// Floor is a length (the seq after the last event) a chain file is known
// to have reached durably, and who knows it, for the error. A crash tears
// only what was written after the last fsync, so no valid event before
// the floor can be missing: a chain that ends before it was cut back or
// replaced, and Open refuses it (*CutBackError) without changing it.
type Floor struct {
	Length uint64
	// Source names what recorded the floor, for the error: "the saved
	// state state.a (recorded by event 41)".
	Source string
}

// Errors returned by a Chain. Test with errors.Is.
var (
	ErrClosed   = errors.New("chain is closed")
	ErrNotEmpty = errors.New("a segment can only start an empty chain")
	ErrLocked   = errors.New("chain is open by another writer")
	ErrCorrupt  = errors.New("chain is corrupt")
)

// CutBackError is a chain that ends before its Floor: events that were
// durable are gone. It matches ErrCorrupt.
type CutBackError struct {
	// Path is the chain file.
	Path string
	// Missing: there is no such file.
	Missing bool
	// Events is how many valid events the file holds, and Length the seq
	// after the last of them.
	Events, Length uint64
	// Floor is the length the file is known to have reached.
	Floor Floor
}

func (e *CutBackError) Error() string {
	holds := "holds no events"
	if e.Missing {
		holds = "does not exist"
	}
	if e.Events > 0 {
		holds = fmt.Sprintf("ends at length %d (%d valid events)", e.Length, e.Events)
	}
	return fmt.Sprintf("chain %s %s, but %s says it reached length %d durably: the chain was cut back or replaced, "+
		"and no longer records what happened; refusing to open it (restore the chain, or move the actor's directory aside to start over)",
		e.Path, holds, e.Floor.Source, e.Floor.Length)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CutBackError) Is(target error) bool { return target == ErrCorrupt }

// flushThreshold is how much a group-commit chain buffers before it writes to
// the file without waiting for the timer, which bounds both the memory held
// and the size of one write (and so of a torn tail after a crash).
const flushThreshold = 256 << 10

// Chain is one actor's chain. Appends are safe for concurrent use, although
// an actor's chain normally has a single writer.
type Chain struct {
	mu     sync.Mutex
	head   Hash
	length uint64 // the next event's seq
	count  uint64 // events in this chain object (file or memory), for StartSegment
	size   int64  // bytes of the file (header and records, written or not), or of a memory chain's records
	now    func() time.Time
	hasher hash.Hash
	scr    []byte // reused encoding buffer of memory chains
	err    error  // sticky: once a write or fsync failed, the chain refuses appends
	closed bool

	// durable chains
	path     string
	f        *os.File
	pend     []byte  // framed records not yet written; nil while the chain is idle
	pendBuf  *[]byte // the pooled buffer pend lives in, nil while idle
	pendFrom uint64  // the seq of the first event in pend
	before   func(Write) error
	floor    uint64 // Options.Floor.Length
	opened   uint64 // events the file held when Open read it, for CutBack
	syncMode bool
	interval time.Duration
	timer    *time.Timer
	armed    bool
	busy     bool      // an append came since the last tick
	dirty    bool      // bytes written to the file since the last fdatasync
	needDir  bool      // the file is new and its directory entry not yet durable
	durable  uint64    // the length the last completed fdatasync covers
	syncs    int       // ticks fsyncing outside the lock
	synced   sync.Cond // on mu: signalled when syncs drops, for Close

	// memory chains
	mem *memStore
}

func newChain(opts Options) *Chain {
	c := &Chain{now: opts.Now, hasher: sha256.New(), interval: opts.SyncInterval}
	c.synced.L = &c.mu
	if c.now == nil {
		c.now = time.Now
	}
	if c.interval <= 0 {
		c.interval = DefaultSyncInterval
	}
	return c
}

// NewMemory returns a chain that lives only in memory; Events reads it back.
func NewMemory(opts Options) *Chain {
	c := newChain(opts)
	c.mem = newMemStore(opts.Retain)
	return c
}

// Recovery is what Open found in an existing file and cut from its tail.
type Recovery struct {
	// Events is the number of valid events the file holds after opening.
	Events uint64
	// DroppedBytes is the size of the torn or corrupt tail that was cut.
	DroppedBytes int64
	// Reason says why the tail was cut; empty when nothing was.
	Reason string
}

// Open opens the chain file at path for appending, creating it (and its
// directory) when missing. It verifies every event; a torn tail (an
// incomplete record, or one whose checksum fails and whose content does
// not verify, with no valid record after it) is cut and reported in
// Recovery. Any other damage is an error wrapping ErrCorrupt: the chain is
// never silently extended. A chain that ends before opts.Floor is refused
// with a *CutBackError. A file of a format version this build does not
// read is refused with a *VersionError and left as it is. Only one Chain
// may have a file open at a time, across processes (ErrLocked). Open is
// Lock followed by Locked.Open.
func Open(path string, opts Options) (*Chain, Recovery, error) {
	l, err := Lock(path)
	if err != nil {
		return nil, Recovery{}, err
	}
	return l.Open(opts)
}

// Locked is a chain file whose writer's lock is held, not yet read: what
// belongs to the chain (an actor's saved state, say) can be read and
// written under the lock before the chain is opened.
type Locked struct {
	path    string
	f       *os.File
	created bool // Lock made the file
}

// Lock takes the writer's lock of the chain file at path, creating the
// file (empty) and its directory when missing, without reading or writing
// it; ErrLocked when another Chain or Locked holds it, in this process or
// another. The lock lasts until Release, or the Chain from Open is closed.
func Lock(path string) (*Locked, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("opening chain %s: %w", path, err)
	}
	for attempt := 0; ; attempt++ {
		created := false
		f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
		if errors.Is(err, os.ErrNotExist) {
			f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o640)
			created = true
		}
		if err != nil {
			return nil, fmt.Errorf("opening chain %s: %w", path, err)
		}
		if err := lockExclusive(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("opening chain %s: %w", path, err)
		}
		// The file may have been removed or renamed (moved aside) between
		// the open and the lock: a lock on it guards nothing at path.
		if same, err := samePath(f, path); err != nil || same {
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("opening chain %s: %w", path, err)
			}
			return &Locked{path: path, f: f, created: created}, nil
		}
		f.Close()
		if attempt == 3 {
			return nil, fmt.Errorf("opening chain %s: %w (the file keeps being replaced)", path, ErrLocked)
		}
	}
}

// samePath reports whether path still names the open file f.
func samePath(f *os.File, path string) (bool, error) {
	open, err := f.Stat()
	if err != nil {
		return false, err
	}
	now, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(open, now), nil
}

// Created reports whether Lock created the file: the directory had no
// chain. Its directory entry is made durable by the chain's first fsync.
func (l *Locked) Created() bool { return l.created }

// Release drops the lock without opening the chain. It is a no-op after
// Open.
func (l *Locked) Release() {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// Open opens the locked chain as Open does; the lock passes to the Chain,
// or is released when it fails.
func (l *Locked) Open(opts Options) (*Chain, Recovery, error) {
	var rec Recovery
	path, f := l.path, l.f
	if f == nil {
		return nil, rec, fmt.Errorf("opening chain %s: the lock was released", path)
	}
	l.f = nil
	fail := func(err error) (*Chain, Recovery, error) {
		f.Close()
		return nil, rec, fmt.Errorf("opening chain %s: %w", path, err)
	}
	if opts.Durability != GroupCommit && opts.Durability != Sync {
		return fail(fmt.Errorf("invalid durability %d", opts.Durability))
	}
	dir := filepath.Dir(path)
	st, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	size := st.Size()
	cutBack := func(events, length uint64) (*Chain, Recovery, error) {
		missing := size == 0 && l.created
		if missing {
			// Lock made it: the chain was not there at all, and is left
			// as it was found.
			_ = os.Remove(path)
		}
		f.Close()
		return nil, rec, &CutBackError{Path: path, Missing: missing, Events: events, Length: length, Floor: opts.Floor}
	}
	c := newChain(opts)
	c.path, c.f, c.syncMode = path, f, opts.Durability == Sync
	c.before, c.floor = opts.BeforeWrite, opts.Floor.Length
	if size == 0 {
		if opts.Floor.Length > 0 {
			return cutBack(0, 0)
		}
		// The header and the file's directory entry are made durable by
		// the chain's first fsync, with its first events, rather than by
		// two fsyncs of their own: until then the chain holds no durable
		// event a crash could lose, and a header a crash tore is written
		// anew by the next Open.
		if _, err := f.Write(magicBytes); err != nil {
			return fail(fmt.Errorf("writing header: %w", err))
		}
		c.needDir = true
		c.size = int64(len(magicBytes))
		c.startTimer()
		return c, rec, nil
	}
	res := scan(newSectionReader(f, size), observer(opts.Observe))
	if res.err != nil {
		return fail(res.err)
	}
	if res.status != scanVersion && res.length < opts.Floor.Length {
		// Checked before anything is cut: a tail that looks torn below
		// the floor was durable, so it is damage, and the file is left
		// as it is for whoever looks into it.
		return cutBack(res.events, res.length)
	}
	switch res.status {
	case scanOK:
	case scanVersion:
		// Written by a newer build: neither cut nor extended here. The
		// error names the file already.
		f.Close()
		return nil, rec, &VersionError{Path: path, Version: res.version}
	case scanIncomplete, scanFraming:
		if res.status == scanFraming && res.offset == 0 {
			return fail(res.corrupt()) // a bad header: not a chain file at all
		}
		tail, err := readTail(f, res.offset, size)
		if err != nil {
			return fail(err)
		}
		if n, ok := wholeEventAt(tail, &res); ok {
			return fail(&CorruptError{Index: res.events, Offset: res.offset, Reason: fmt.Sprintf(
				"%s, but the record there holds a whole event (a %d-byte body whose hash and link verify): its frame was damaged after it was written, which no crash does; refusing to cut it as a torn tail",
				res.reason, n)})
		}
		if flippedBit(tail) {
			return fail(&CorruptError{Index: res.events, Offset: res.offset, Reason: res.reason +
				": the record is whole and one bit from its checksum, a bit flipped after it was written, which no crash does; refusing to cut it as a torn tail"})
		}
		if off, ok, err := findValidRecord(tail, res.offset, res); err != nil {
			return fail(err)
		} else if ok {
			return fail(&CorruptError{Index: res.events, Offset: res.offset, Reason: fmt.Sprintf(
				"%s, but a valid record follows at offset %d: damage in the middle of the chain, not a torn tail", res.reason, off)})
		}
		if size-res.offset > maxRecoverTail {
			return fail(&CorruptError{Index: res.events, Offset: res.offset, Reason: fmt.Sprintf(
				"%s; refusing to cut %d bytes (more than a crash can tear)", res.reason, size-res.offset)})
		}
		rec.DroppedBytes = size - res.offset
		rec.Reason = res.reason
		if res.offset < int64(len(Magic)) {
			// Not even the header survived: start the file over.
			if err := f.Truncate(0); err != nil {
				return fail(err)
			}
			if err := writeHeader(f, dir); err != nil {
				return fail(err)
			}
		} else {
			if err := f.Truncate(res.offset); err != nil {
				return fail(err)
			}
			if err := fsync.Data(f); err != nil {
				return fail(err)
			}
		}
	default:
		return fail(res.corrupt())
	}
	rec.Events = res.events
	c.head, c.length, c.count, c.opened = res.head, res.length, res.events, res.events
	c.size = size - rec.DroppedBytes
	if rec.DroppedBytes > 0 && res.offset < int64(len(Magic)) {
		c.size = int64(len(magicBytes)) // the header was written anew
	}
	c.startTimer()
	return c, rec, nil
}

// errCutHere stops CutBack's scan at the first event it cuts.
var errCutHere = errors.New("cut here")

// CutBack cuts the events from seq length on off a chain that Open has
// just read, before anything was appended to it, and returns the bytes it
// cut. It is for a writer that knows from what it saved beside the chain
// that those events were never durable: written after that save, in one
// write a crash cut short (an actor's state, statefile.go in actorhost).
// It never cuts below the Floor Open was given, nor every event; the cut
// is fsynced before CutBack returns.
func (c *Chain) CutBack(length uint64) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.f == nil:
		return 0, errors.New("cutting back chain: not a file chain")
	case c.closed:
		return 0, fmt.Errorf("cutting back chain: %w", ErrClosed)
	case c.err != nil:
		return 0, c.err
	case c.count != c.opened || len(c.pend) > 0:
		return 0, fmt.Errorf("cutting back chain %s: events were appended since it was opened", c.path)
	case length >= c.length:
		return 0, fmt.Errorf("cutting back chain %s to length %d: it is %d long", c.path, length, c.length)
	case length < c.floor:
		return 0, fmt.Errorf("cutting back chain %s to length %d: below its floor %d", c.path, length, c.floor)
	}
	res := scan(newSectionReader(c.f, c.size), func(e Event) error {
		if e.Seq == length {
			return errCutHere
		}
		return nil
	})
	if res.status != scanCallback || !errors.Is(res.err, errCutHere) {
		if res.err == nil {
			res.err = res.corrupt()
		}
		return 0, fmt.Errorf("cutting back chain %s to length %d: %w", c.path, length, res.err)
	}
	if res.events == 0 {
		return 0, fmt.Errorf("cutting back chain %s to length %d: that would cut every event", c.path, length)
	}
	if err := c.f.Truncate(res.offset); err != nil {
		return 0, fmt.Errorf("cutting back chain %s: %w", c.path, err)
	}
	if err := fsync.Data(c.f); err != nil {
		return 0, fmt.Errorf("cutting back chain %s: %w", c.path, err)
	}
	dropped := c.size - res.offset
	c.head, c.length, c.count, c.opened, c.size = res.head, res.length, res.events, res.events, res.offset
	return dropped, nil
}

// observer adapts Options.Observe to scan's callback.
func observer(fn func(Event)) func(Event) error {
	if fn == nil {
		return nil
	}
	return func(e Event) error {
		fn(e)
		return nil
	}
}

// maxRecoverTail bounds how much Open cuts by itself. A crash tears at most
// what was written since the last fsync, which group commit keeps far below.
const maxRecoverTail = 64 << 20

func writeHeader(f *os.File, dir string) error {
	if _, err := f.Write(magicBytes); err != nil {
		return fmt.Errorf("writing header: %w", err)
	}
	if err := fsync.Data(f); err != nil {
		return fmt.Errorf("syncing header: %w", err)
	}
	// The file's directory entry must be durable too, or a crash can lose
	// the whole file.
	return fsync.Dir(dir)
}

// syncFile fsyncs the chain's data, and the first time its directory too
// when the file is new (needDir): an event is durable only once the file
// it is in cannot vanish. Called with the lock held.
func (c *Chain) syncFile(f *os.File) error {
	if err := fsync.Data(f); err != nil {
		return err
	}
	if c.needDir {
		if err := fsync.Dir(filepath.Dir(c.path)); err != nil {
			return err
		}
		c.needDir = false
	}
	return nil
}

func (c *Chain) startTimer() {
	c.timer = time.AfterFunc(time.Hour, c.tick)
	c.timer.Stop()
}

// A node runs thousands of mostly idle actors, so an idle durable chain holds
// no write buffer: it takes one from this pool on its first append and gives
// it back once a whole interval passes without appends. A chain that keeps
// appending keeps its buffer, so the hot path neither allocates nor touches
// the pool.
var pendPool = sync.Pool{New: func() any {
	b := make([]byte, 0, pendInitialSize)
	return &b
}}

const (
	// pendInitialSize fits a typical interval's events; a busier chain grows
	// its buffer (up to about flushThreshold) and keeps it while busy.
	pendInitialSize = 16 << 10
	// maxPooledPend keeps the pool from handing a huge buffer, grown by one
	// big event, to the next chain that wakes up; such a buffer is dropped.
	maxPooledPend = 2 * flushThreshold
)

func (c *Chain) takeBuf() {
	c.pendBuf = pendPool.Get().(*[]byte)
	c.pend = (*c.pendBuf)[:0]
}

// releaseBuf gives the write buffer back; what it holds is discarded, so the
// caller has written it or given up on it.
func (c *Chain) releaseBuf() {
	if c.pendBuf == nil {
		return
	}
	if cap(c.pend) <= maxPooledPend {
		*c.pendBuf = c.pend[:0]
		pendPool.Put(c.pendBuf)
	}
	c.pendBuf, c.pend = nil, nil
}

// BufferedBytes is the memory the chain holds for its events: a durable
// chain's write buffer while it has one (idle chains give theirs back), a
// memory chain's stored events. The host counts it in the actor's memory.
func (c *Chain) BufferedBytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := int64(cap(c.pend) + cap(c.scr))
	if c.mem != nil {
		n += c.mem.bytes
	}
	return n
}

// Size returns the bytes the chain takes: its file's size with what is
// still buffered, or for a memory chain what its events would take in a
// file (without the header).
func (c *Chain) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

// RecordSize is the number of bytes an event of kind and op with dataLen
// bytes of data takes in a chain file: what appending it costs the disk.
func RecordSize(kind Kind, op string, dataLen int) int {
	return frameHeaderSize + fixedBodySize + len(kind) + len(op) + dataLen
}

// Path returns the chain's file, or "" for a memory chain.
func (c *Chain) Path() string { return c.path }

// Append adds an event of kind and op with a copy of data, stamped with the
// chain's clock, and returns its hash. Lifecycle kinds and Sync chains are
// durable when Append returns; other appends within SyncInterval.
func (c *Chain) Append(kind Kind, op string, data []byte) (Hash, error) {
	if kind == KindSegmentStart {
		return Hash{}, errors.New("appending to chain: segment starts go through StartSegment")
	}
	c.mu.Lock()
	h, err := c.appendLocked(kind, op, data, nil)
	c.mu.Unlock()
	return h, err
}

// AppendNoting is Append that calls note with the event's seq once the
// event has it, under the chain's lock and before the event can be
// written: whatever Options.BeforeWrite needs to know about the event is
// in place whichever path writes it, even the append itself. note must
// not call the chain's methods.
func (c *Chain) AppendNoting(kind Kind, op string, data []byte, note func(seq uint64)) (Hash, error) {
	if kind == KindSegmentStart {
		return Hash{}, errors.New("appending to chain: segment starts go through StartSegment")
	}
	c.mu.Lock()
	h, err := c.appendLocked(kind, op, data, note)
	c.mu.Unlock()
	return h, err
}

// StartSegment appends the first event of a chain that continues a head
// recorded elsewhere (the actor moved hosts): its parent is prev and its seq
// is prevLength. It fails with ErrNotEmpty unless the chain has no events.
func (c *Chain) StartSegment(prev Hash, prevLength uint64, data []byte) (Hash, error) {
	if prev.IsZero() != (prevLength == 0) {
		return Hash{}, fmt.Errorf("starting segment: previous head %s does not fit length %d", prev.Short(), prevLength)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.count != 0 {
		return Hash{}, fmt.Errorf("starting segment: %w (it has %d)", ErrNotEmpty, c.count)
	}
	oldHead, oldLen := c.head, c.length
	c.head, c.length = prev, prevLength
	h, err := c.appendLocked(KindSegmentStart, "segment-start", data, nil)
	if err != nil {
		c.head, c.length = oldHead, oldLen
	}
	return h, err
}

func (c *Chain) appendLocked(kind Kind, op string, data []byte, note func(uint64)) (Hash, error) {
	if c.closed {
		return Hash{}, fmt.Errorf("appending to chain: %w", ErrClosed)
	}
	if c.err != nil {
		return Hash{}, fmt.Errorf("appending to chain after an earlier failure: %w", c.err)
	}
	if err := validKind(kind); err != nil {
		return Hash{}, fmt.Errorf("appending to chain: %w", err)
	}
	if len(op) > MaxOpSize {
		return Hash{}, fmt.Errorf("appending to chain: op is %d bytes, the limit is %d", len(op), MaxOpSize)
	}
	if !utf8.ValidString(op) {
		return Hash{}, errors.New("appending to chain: op is not valid UTF-8")
	}
	if len(data) > MaxDataSize {
		return Hash{}, fmt.Errorf("appending to chain: data is %d bytes, the limit is %d", len(data), MaxDataSize)
	}
	t := c.now().UnixNano()
	var sum Hash
	if c.mem != nil {
		c.scr = appendBody(c.scr[:0], c.length, &c.head, kind, op, t, data)
		c.scr = sumInto(c.hasher, c.scr, c.scr)
		copy(sum[:], c.scr[len(c.scr)-HashSize:])
		c.mem.add(Event{Seq: c.length, Parent: c.head, Kind: kind, Op: op, Time: t, Data: data, Hash: sum})
	} else {
		if c.pendBuf == nil {
			c.takeBuf()
		}
		if len(c.pend) == 0 {
			c.pendFrom = c.length
		}
		c.pend, sum = appendRecord(c.pend, c.hasher, c.length, &c.head, kind, op, t, data)
	}
	if note != nil {
		note(c.length)
	}
	c.head = sum
	c.length++
	c.count++
	c.size += int64(RecordSize(kind, op, len(data)))
	if c.f == nil {
		return sum, nil
	}
	opens := !c.syncMode && kind.opensStart()
	if opens {
		// Written at once, so that a process that dies leaves it in the
		// file as before, but neither fsynced nor left to the group
		// commit: the start it opens makes it durable with the event that
		// ends the start (its InitResult, or the failure), one fsync for
		// all of them instead of one each.
		return sum, c.writeLocked()
	}
	// Armed even when this append is written at once: the tick is also what
	// notices the chain went quiet and gives its buffer back.
	c.busy = true
	if !c.armed {
		c.armed = true
		c.timer.Reset(c.interval)
	}
	if c.syncMode || kind.IsLifecycle() {
		if err := c.writeLocked(); err != nil {
			return sum, err
		}
		if err := c.syncLocked(); err != nil {
			return sum, err
		}
		return sum, nil
	}
	if len(c.pend) >= flushThreshold {
		if err := c.writeLocked(); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// syncLocked makes everything appended so far durable; called with
// nothing buffered (after writeLocked).
func (c *Chain) syncLocked() error {
	if err := c.syncFile(c.f); err != nil {
		c.err = fmt.Errorf("syncing %s: %w", c.path, err)
		return c.err
	}
	c.dirty = false
	c.durable = c.length
	return nil
}

// writeLocked hands the buffered records to the file in one write, so a
// crash tears at most the end of one buffer; Options.BeforeWrite first.
func (c *Chain) writeLocked() error {
	if len(c.pend) == 0 {
		return nil
	}
	if c.before != nil {
		if err := c.before(Write{From: c.pendFrom, To: c.length, c: c}); err != nil {
			c.err = fmt.Errorf("before writing events %d to %d of %s: %w", c.pendFrom, c.length-1, c.path, err)
			return c.err
		}
	}
	if err := writeAll(c.f, c.pend); err != nil {
		c.err = fmt.Errorf("writing %s: %w", c.path, err)
		return c.err
	}
	c.pend = c.pend[:0]
	c.dirty = true
	return nil
}

// writeChunk, when positive, splits every write into pieces of this size.
// The crash test sets it so that kill -9 can land inside a record.
var writeChunk int

// SplitWrites makes every durable chain of the process write its events
// to the file in pieces of n bytes (n <= 0: in one write each), so that a
// kill -9 lands inside records, and inside what one write carries, far
// more often than it would. It is for crash tests, in this package and
// the ones that build on it, and must be called before any chain is
// opened.
func SplitWrites(n int) { writeChunk = n }

func writeAll(f *os.File, b []byte) error {
	if writeChunk <= 0 {
		_, err := f.Write(b)
		return err
	}
	for len(b) > 0 {
		n := min(writeChunk, len(b))
		if _, err := f.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// tick is the group commit: write what is buffered, then fsync outside the
// lock so appenders are not held up by the disk. While appends keep coming it
// re-arms itself; the first tick that finds a whole quiet interval behind it
// releases the write buffer and stops, until the next append arms it again.
func (c *Chain) tick() {
	c.mu.Lock()
	c.armed = false
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.err != nil {
		c.releaseBuf() // nothing more will be written
		c.mu.Unlock()
		return
	}
	if !c.busy && len(c.pend) == 0 && !c.dirty {
		c.releaseBuf()
		c.mu.Unlock()
		return
	}
	c.busy = false
	if err := c.writeLocked(); err != nil {
		c.mu.Unlock()
		return
	}
	c.armed = true
	c.timer.Reset(c.interval)
	if !c.dirty {
		c.mu.Unlock()
		return
	}
	// Cleared before the fsync starts: anything written after this point is
	// not covered by it and marks the chain dirty again for the next tick.
	c.dirty = false
	c.syncs++
	f, covers, needDir := c.f, c.length, c.needDir
	c.mu.Unlock()

	err := fsync.Data(f)
	if err == nil && needDir {
		err = fsync.Dir(filepath.Dir(c.path))
	}

	c.mu.Lock()
	c.syncs--
	if err != nil && c.err == nil {
		c.err = fmt.Errorf("syncing %s: %w", c.path, err)
	}
	if err == nil && needDir {
		c.needDir = false
	}
	if err == nil && covers > c.durable {
		c.durable = covers
	}
	c.synced.Broadcast()
	c.mu.Unlock()
}

// Head returns the hash of the last event and the chain's length (the seq
// the next event will get). A new chain's head is the zero Hash.
func (c *Chain) Head() (head Hash, length uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.head, c.length
}

// Durable returns the length (the seq after the last event) up to which
// the chain's events are known to be on stable storage: what the last
// fsync covered. A memory chain's is its length. Events that were in the
// file when Open read it count only once an fsync covered them.
func (c *Chain) Durable() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return c.length
	}
	return c.durable
}

// SyncThrough makes the events before length durable: at once when an
// fsync already covered them (group commit usually has), else with one
// now. Whoever writes something that must never be ahead of the chain
// (an actor's saved state) calls it first.
func (c *Chain) SyncThrough(length uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.durable >= length {
		return nil
	}
	return c.syncAllLocked()
}

// SyncEnd makes every event appended so far durable and returns the
// chain's end as one consistent point: its length and head, and the size
// of its file up to there (the offset the next record starts at). A
// closed chain returns the end Close made durable. It is for a reader of
// the file that must stop at a durable record boundary (the archive's
// uploader): the bytes before the returned size never change again.
func (c *Chain) SyncEnd() (Link, int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	end := Link{Length: c.length, Head: c.head}
	if c.mem != nil {
		return Link{}, 0, errors.New("the end of a chain: a memory chain has no file")
	}
	if c.closed {
		if c.durable < c.length {
			return Link{}, 0, fmt.Errorf("the end of %s: its last events were never made durable: %w", c.path, ErrClosed)
		}
		return end, c.size, nil
	}
	if err := c.syncAllLocked(); err != nil {
		return Link{}, 0, err
	}
	return end, c.size, nil
}

// Sync makes every event appended so far durable.
func (c *Chain) Sync() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.syncAllLocked()
}

// syncAllLocked writes what is buffered and fsyncs a file chain.
func (c *Chain) syncAllLocked() error {
	if c.f == nil {
		return nil
	}
	if c.closed {
		return fmt.Errorf("syncing chain: %w", ErrClosed)
	}
	if c.err != nil {
		return c.err
	}
	if err := c.writeLocked(); err != nil {
		return err
	}
	if c.allSynced() {
		return nil
	}
	return c.syncLocked()
}

// allSynced reports whether an fsync that completed already covers every
// event and nothing was written since: a stop's Sync and Close after a
// lifecycle event's fsync need none of their own. Called with the lock
// held and nothing buffered.
func (c *Chain) allSynced() bool { return !c.dirty && c.durable == c.length }

// Close flushes and fsyncs a durable chain and releases its file and its
// lock: when Close returns, the chain can be opened again at once. Further
// appends fail with ErrClosed. Close is idempotent.
func (c *Chain) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.f == nil {
		return nil
	}
	// A tick that has fired but not yet taken the lock sees closed and does
	// nothing. One already fsyncing outside the lock holds a reference to the
	// file, and closing a regular *os.File does not wait for that: the
	// descriptor, and with it the flock, would outlive Close, and an
	// immediate reopen would fail with ErrLocked. So wait for it.
	c.timer.Stop()
	for c.syncs > 0 {
		c.synced.Wait()
	}
	defer c.releaseBuf()
	err := c.err
	if err == nil {
		err = c.writeLocked()
	}
	if err == nil && !c.allSynced() {
		if serr := c.syncFile(c.f); serr != nil {
			err = fmt.Errorf("syncing %s: %w", c.path, serr)
		} else {
			c.durable = c.length
		}
	}
	if cerr := c.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("closing %s: %w", c.path, cerr)
	}
	return err
}

// Events calls fn for each event of the chain in order. A memory chain
// yields the events it retains (see Options.Retain); a durable chain is
// flushed and read back from its file. Event.Data is valid only during fn.
func (c *Chain) Events(fn func(Event) error) error {
	c.mu.Lock()
	if c.mem != nil {
		defer c.mu.Unlock()
		return c.mem.each(fn)
	}
	err := c.err
	if err == nil && !c.closed {
		err = c.writeLocked()
	}
	path := c.path
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return ReadFile(path, fn)
}
