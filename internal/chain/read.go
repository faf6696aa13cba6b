package chain

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
)

// CorruptError describes the first bad event of a chain file.
type CorruptError struct {
	// Index is the bad event's position in the file, counting from 0.
	Index uint64
	// Offset is the byte offset of its record; -1 where there is none (a
	// JSON-lines export).
	Offset int64
	// Reason says what is wrong with it.
	Reason string
}

func (e *CorruptError) Error() string {
	if e.Offset < 0 {
		return fmt.Sprintf("event %d: %s", e.Index, e.Reason)
	}
	return fmt.Sprintf("event %d (offset %d): %s", e.Index, e.Offset, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Report is the result of verifying a chain.
type Report struct {
	// Events is the number of valid events before the first bad one, or of
	// all events when the chain is intact.
	Events uint64
	// Head and Length are the hash and the next seq after the valid events.
	Head   Hash
	Length uint64
	// FirstBad is the index of the first bad event, or -1 when intact.
	FirstBad int64
	// Offset is the byte offset of the first bad record (file chains).
	Offset int64
	// Reason says why the first bad event is bad.
	Reason string
	// Writing is set when the last record was incomplete while a writer
	// held the chain open: it is being written, not damaged.
	Writing bool
}

// OK reports whether every event verified.
func (r Report) OK() bool { return r.FirstBad < 0 }

// ResolvePath returns path itself, or path/chain.log when path is a
// directory (an actor's directory).
func ResolvePath(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if st.IsDir() {
		return filepath.Join(path, FileName), nil
	}
	return path, nil
}

// ReadFile calls fn for each event of the chain file at path, in order,
// after checking its framing, hash and parent link. It stops at the first
// bad event with a *CorruptError, and at fn's first error, which it returns
// as is. A file of a format version this build does not read is refused
// with a *VersionError. An incomplete last record that a live writer is
// still writing ends the read without error. Event.Data is valid only during fn.
func ReadFile(path string, fn func(Event) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("reading chain: %w", err)
	}
	defer f.Close()
	res, writing := scanLive(f, fn)
	switch res.status {
	case scanCallback:
		return res.err
	case scanVersion:
		return &VersionError{Path: path, Version: res.version}
	}
	if res.err != nil {
		return fmt.Errorf("reading chain %s: %w", path, res.err)
	}
	if res.status == scanOK || writing {
		return nil
	}
	return fmt.Errorf("reading chain %s: %w", path, res.corrupt())
}

// maxLiveRescans bounds how often scanLive reads a file again because it
// grew while it was read.
const maxLiveRescans = 8

// scanLive scans a chain file that a writer may be appending to. An
// incomplete last record is being written (writing is true) while a writer
// holds the file's lock. A writer may also finish its write and close the
// file between the moment the scan read the half-written record and the
// moment it asks for the lock: so when nobody holds the lock but the file
// grew during the scan, it is read again (fn sees each event once), and only
// an incomplete record in a file that did not change is a torn tail.
func scanLive(f *os.File, fn func(Event) error) (res scanResult, writing bool) {
	var delivered uint64
	once := fn
	if fn != nil {
		once = func(e Event) error {
			// A rescan starts from the first event again.
			if e.Seq < delivered {
				return nil
			}
			delivered = e.Seq + 1
			return fn(e)
		}
	}
	for attempt := 0; ; attempt++ {
		before, err := f.Stat()
		if err != nil {
			return scanResult{err: err}, false
		}
		res = scan(io.NewSectionReader(f, 0, math.MaxInt64), once)
		if res.status != scanIncomplete {
			return res, false
		}
		if writerActive(f) {
			return res, true
		}
		after, err := f.Stat()
		if err != nil {
			return scanResult{err: err}, false
		}
		if after.Size() == before.Size() || attempt == maxLiveRescans {
			return res, false
		}
	}
}

// VerifyFile recomputes every hash and parent link of the chain file at
// path. The error is for a file that can't be read: an I/O failure, or a
// format version this build does not know (*VersionError); damage is in
// the Report.
func VerifyFile(path string) (Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return Report{FirstBad: -1}, fmt.Errorf("verifying chain: %w", err)
	}
	defer f.Close()
	res, writing := scanLive(f, nil)
	if res.status == scanVersion {
		return report(res, writing), &VersionError{Path: path, Version: res.version}
	}
	return report(res, writing), nil
}

// Verify checks a chain file's bytes read from r. An incomplete last record
// is damage: no writer can be known to be appending.
func Verify(r io.Reader) (Report, error) {
	res := scan(r, nil)
	rep := report(res, false)
	if res.status == scanVersion {
		return rep, &VersionError{Version: res.version}
	}
	if rep.Reason == "" && !rep.OK() {
		return rep, errors.New("verifying chain: unknown failure")
	}
	return rep, nil
}

// report turns a scan into a Report; writing says an incomplete last
// record is being written. A file of an unknown format version verified
// nothing: its Report is not OK.
func report(res scanResult, writing bool) Report {
	rep := Report{Events: res.events, Head: res.head, Length: res.length, FirstBad: -1}
	switch {
	case res.status == scanVersion:
		rep.FirstBad, rep.Reason = 0, fmt.Sprintf("format version %d is not one this build reads", res.version)
	case res.err != nil:
		rep.FirstBad, rep.Offset, rep.Reason = int64(res.events), res.offset, "read error: "+res.err.Error()
	case res.status == scanOK:
	case res.status == scanIncomplete && writing:
		rep.Writing = true
	default:
		rep.FirstBad, rep.Offset, rep.Reason = int64(res.events), res.offset, res.reason
	}
	return rep
}

type scanStatus int

const (
	scanOK         scanStatus = iota
	scanIncomplete            // the last record runs past the end: torn, or being written
	scanFraming               // a record's length or checksum is wrong: torn or damaged bytes
	scanLogical               // a record is intact but its content, hash or link is wrong
	scanCallback              // the callback returned an error
	scanVersion               // the header names a format version this build does not read
)

type scanResult struct {
	status  scanStatus
	events  uint64 // valid events
	first   Event  // the first valid event, without Data
	head    Hash
	length  uint64
	offset  int64 // size of the valid prefix: where the first bad record starts
	reason  string
	err     error // I/O or callback error
	version int   // the unknown format version, with scanVersion
	// cont: the records continue a chain at head/length (a segment,
	// VerifySegment), so the first one must link to them.
	cont bool
}

func (r scanResult) corrupt() error {
	return &CorruptError{Index: r.events, Offset: r.offset, Reason: r.reason}
}

func newSectionReader(f *os.File, size int64) io.Reader { return io.NewSectionReader(f, 0, size) }

// scan reads and checks a chain file from its start. It never allocates more
// than one record's bytes, however corrupt the input.
func scan(r io.Reader, fn func(Event) error) scanResult {
	var res scanResult
	br := bufio.NewReaderSize(r, 64<<10)
	hdr, perr := br.Peek(maxHeaderSize)
	if perr != nil && !errors.Is(perr, io.EOF) {
		res.err = perr
		return res
	}
	switch kind, size, version := parseHeader(hdr); kind {
	case headerV1:
		if _, err := br.Discard(size); err != nil {
			res.err = err
			return res
		}
	case headerTorn:
		res.status, res.reason = scanIncomplete, fmt.Sprintf("torn file header: %d of %d bytes", len(hdr), len(Magic))
		return res
	case headerUnknown:
		res.status, res.version = scanVersion, version
		return res
	default:
		res.status, res.reason = scanFraming, fmt.Sprintf("bad file header %q: not a troupe chain file (want %q)", hdr[:min(len(hdr), len(Magic))], Magic)
		return res
	}
	res.offset = int64(len(Magic))
	return scanRecords(br, res, fn)
}

// scanRecords reads and checks records from br until its end, continuing
// res: a whole file's after its header, or a segment's from its first
// record (res.cont set).
func scanRecords(br *bufio.Reader, res scanResult, fn func(Event) error) scanResult {
	h := sha256.New()
	var sum []byte
	var body []byte
	var frame [frameHeaderSize]byte
	intern := make(map[string]string)
	for {
		n, err := io.ReadFull(br, frame[:])
		if n == 0 && errors.Is(err, io.EOF) {
			return res
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			res.status, res.reason = scanIncomplete, fmt.Sprintf("torn record: %d of %d frame bytes at the end", n, frameHeaderSize)
			return res
		}
		if err != nil {
			res.err = err
			return res
		}
		blen := binary.BigEndian.Uint32(frame[:])
		if blen < minBodySize || blen > maxBodySize {
			res.status, res.reason = scanFraming, fmt.Sprintf("record length %d outside [%d, %d]", blen, minBodySize, maxBodySize)
			return res
		}
		var got int
		body, got, err = readN(br, body, int(blen))
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			res.status, res.reason = scanIncomplete, fmt.Sprintf("torn record: %d of %d bytes at the end", got, blen)
			return res
		}
		if err != nil {
			res.err = err
			return res
		}
		if crc := crc32.Checksum(body, castagnoli); crc != binary.BigEndian.Uint32(frame[4:]) {
			res.status, res.reason = scanFraming, fmt.Sprintf("checksum mismatch: record says %08x, bytes give %08x", binary.BigEndian.Uint32(frame[4:]), crc)
			return res
		}
		e, err := decodeBody(body, intern)
		if err != nil {
			res.status, res.reason = scanLogical, err.Error()
			return res
		}
		var ok bool
		if sum, ok = checkHash(h, sum, body); !ok {
			res.status, res.reason = scanLogical, fmt.Sprintf("hash mismatch: recorded %s, computed %x", e.Hash, sum)
			return res
		}
		if reason := linkProblem(&res, &e); reason != "" {
			res.status, res.reason = scanLogical, reason
			return res
		}
		if fn != nil {
			if err := fn(e); err != nil {
				res.status, res.err = scanCallback, err
				return res
			}
		}
		if res.events == 0 {
			res.first = e
			res.first.Data = nil
		}
		res.events++
		res.head, res.length = e.Hash, e.Seq+1
		res.offset += int64(frameHeaderSize) + int64(blen)
	}
}

// linkProblem checks e's place in the chain: a chain starts at seq 0 with a
// zero parent, or with a segment start that links to a head elsewhere; every
// later event follows its predecessor.
func linkProblem(res *scanResult, e *Event) string {
	if res.events == 0 && !res.cont {
		if e.Kind == KindSegmentStart {
			if e.Parent.IsZero() != (e.Seq == 0) {
				return fmt.Sprintf("segment start with seq %d and parent %s: a zero parent goes with seq 0 only", e.Seq, e.Parent.Short())
			}
			return ""
		}
		if e.Seq != 0 {
			return fmt.Sprintf("first event has seq %d, want 0 (or a %s)", e.Seq, KindSegmentStart)
		}
		if !e.Parent.IsZero() {
			return fmt.Sprintf("first event has parent %s, want zero", e.Parent.Short())
		}
		return ""
	}
	if e.Kind == KindSegmentStart && res.events > 0 {
		return "segment start after the first event"
	}
	if e.Seq != res.length {
		return fmt.Sprintf("seq %d, want %d", e.Seq, res.length)
	}
	if e.Parent != res.head {
		return fmt.Sprintf("broken link: parent %s, previous event's hash is %s", e.Parent.Short(), res.head.Short())
	}
	return ""
}

// readN reads exactly n bytes into buf, growing it as bytes arrive so that a
// corrupt length near EOF costs no large allocation.
func readN(r io.Reader, buf []byte, n int) ([]byte, int, error) {
	buf = buf[:0]
	for len(buf) < n {
		step := min(n-len(buf), 1<<20)
		if cap(buf)-len(buf) < step {
			buf = append(buf[:cap(buf)], make([]byte, step-(cap(buf)-len(buf)))...)[:len(buf)]
		}
		m, err := io.ReadFull(r, buf[len(buf):len(buf)+step])
		buf = buf[:len(buf)+m]
		if err != nil {
			return buf, len(buf), err
		}
	}
	return buf, len(buf), nil
}

// readTail reads the bytes of f from off to size, the tail Open would cut;
// nil when it is longer than Open cuts anyway.
func readTail(f *os.File, off, size int64) ([]byte, error) {
	if size-off > maxRecoverTail {
		return nil, nil
	}
	tail := make([]byte, size-off)
	if _, err := f.ReadAt(tail, off); err != nil {
		return nil, fmt.Errorf("reading tail: %w", err)
	}
	return tail, nil
}

// wholeEventAt reports whether tail, which starts with the record the scan
// found bad, nonetheless holds that record's event whole: a body as long as
// its own length fields say, whose hash verifies and which follows the
// events before it. A crash writes a prefix of a record, frame first, or
// leaves blocks it never wrote as zeros; it never leaves a whole event
// behind a frame that does not match it (a length grown or shrunk, a
// checksum changed). So such a record was damaged after it was written,
// and cutting it would throw a real event away. It returns the body's
// length. A frame of eight zero bytes is one a crash did not write.
func wholeEventAt(tail []byte, res *scanResult) (int, bool) {
	if len(tail) < frameHeaderSize+minBodySize || allZero(tail[:frameHeaderSize]) {
		return 0, false
	}
	p := tail[frameHeaderSize:]
	n, ok := impliedBodySize(p)
	if !ok || n > len(p) {
		return 0, false
	}
	body := p[:n]
	e, err := decodeBody(body, nil)
	if err != nil {
		return 0, false
	}
	if _, ok := checkHash(sha256.New(), nil, body); !ok {
		return 0, false
	}
	return n, linkProblem(res, &e) == ""
}

// impliedBodySize is the length of the record body p starts with, by the
// length prefixes of its kind, op and data; false when they are out of
// bounds or p ends before them.
func impliedBodySize(p []byte) (int, bool) {
	off := 8 + HashSize
	for _, limit := range []int{MaxKindSize, MaxOpSize, -1, MaxDataSize} {
		if limit < 0 { // the time, between op and data
			off += 8
			continue
		}
		if off+4 > len(p) {
			return 0, false
		}
		l := int(binary.BigEndian.Uint32(p[off:]))
		if l > limit {
			return 0, false
		}
		off += 4 + l
	}
	return off + HashSize, true
}

// flippedBit reports whether the whole record at the start of tail fails
// its checksum by exactly one bit: in its body or in the checksum. A crash
// tears a write off or leaves zeros where it was not written; the bytes it
// did write are the writer's, so a record whose bytes are all there and
// differ from what its checksum says by one bit was damaged later (bit rot,
// a stray write), and is not cut as a torn tail.
func flippedBit(tail []byte) bool {
	if len(tail) < frameHeaderSize {
		return false
	}
	n := int(binary.BigEndian.Uint32(tail))
	if n < minBodySize || n > maxBodySize || frameHeaderSize+n > len(tail) {
		return false
	}
	body := tail[frameHeaderSize : frameHeaderSize+n]
	syndrome := binary.BigEndian.Uint32(tail[4:]) ^ crc32.Checksum(body, castagnoli)
	if syndrome == 0 {
		return false
	}
	if syndrome&(syndrome-1) == 0 {
		return true // one bit of the stored checksum
	}
	// CRC-32C is linear: flipping bit b of byte i changes the checksum by
	// the CRC (zero start, no final xor) of that bit followed by the
	// n-1-i bytes after it, the same for every message of this length.
	// Each step below appends one zero byte to all eight candidates.
	var s [8]uint32
	for b := range s {
		s[b] = castagnoli[byte(1)<<b]
	}
	for range n {
		for b := range s {
			if s[b] == syndrome {
				return true
			}
			s[b] = castagnoli[byte(s[b])] ^ s[b]>>8
		}
	}
	return false
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// findValidRecord looks for an intact record (length, checksum and hash all
// valid) anywhere after the bad one at the start of tail (at off in the
// file). Finding one means the damage is in the middle of the chain:
// cutting there would throw away good events.
func findValidRecord(tail []byte, off int64, res scanResult) (int64, bool, error) {
	h := sha256.New()
	var sum []byte
	maxRecords := uint64(len(tail)/(frameHeaderSize+minBodySize)) + 1
	budget := 1 << 30 // bytes of checksum work
	for i := 1; i+frameHeaderSize+minBodySize <= len(tail); i++ {
		blen := int(binary.BigEndian.Uint32(tail[i:]))
		if blen < minBodySize || blen > maxBodySize || i+frameHeaderSize+blen > len(tail) {
			continue
		}
		body := tail[i+frameHeaderSize : i+frameHeaderSize+blen]
		// A later event of this chain has a seq just past the valid prefix;
		// that cheap test spares the checksum at almost every offset.
		if res.events > 0 {
			seq := binary.BigEndian.Uint64(body)
			if seq < res.length || seq-res.length > maxRecords {
				continue
			}
		}
		// Without the seq filter a hostile tail could make this quadratic;
		// past the budget, refusing to cut is the safe answer.
		if budget -= len(body); budget < 0 {
			return 0, false, &CorruptError{Index: res.events, Offset: off, Reason: fmt.Sprintf(
				"%s; the %d bytes after it are too costly to search for intact records, refusing to cut them", res.reason, len(tail))}
		}
		if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(tail[i+4:]) {
			continue
		}
		if _, err := decodeBody(body, nil); err != nil {
			continue
		}
		var ok bool
		if sum, ok = checkHash(h, sum, body); ok {
			return off + int64(i), true, nil
		}
	}
	return 0, false, nil
}
