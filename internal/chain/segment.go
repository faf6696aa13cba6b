package chain

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

// Link is the point a run of records continues from: the chain's length
// (the seq its next event gets) and head before the run's first record.
// The zero Link is the start of a chain.
type Link struct {
	Length uint64
	Head   Hash
}

// SegmentReport describes a run of records that verified.
type SegmentReport struct {
	// Events is the number of records.
	Events uint64
	// First is the first record's seq and FirstKind its kind (a
	// SegmentStart when the run begins a host's file after a move).
	First     uint64
	FirstKind Kind
	// Parent is the first record's parent hash.
	Parent Hash
	// Head and Length are the last record's hash and seq + 1: the Link
	// the next run continues from.
	Head   Hash
	Length uint64
	// Bytes is the run's size and Sha256 the SHA-256 of its bytes.
	Bytes  int64
	Sha256 [sha256.Size]byte
}

// End returns the Link a following run continues from.
func (r SegmentReport) End() Link { return Link{Length: r.Length, Head: r.Head} }

// ErrEmptySegment is returned for a run of no records.
var ErrEmptySegment = errors.New("segment holds no records")

// VerifySegment checks a run of records as they sit in a chain file,
// between two record boundaries and without the file header: the bytes an
// archive stores for a sealed segment (docs/archive.md). Every record's
// framing, checksum, hash and link is checked as in a file, and the first
// record must continue prev: seq prev.Length and parent prev.Head (it may be
// a SegmentStart, which links the same way). A nil prev means the run
// begins a chain: its first record is seq 0 with a zero parent, or a
// SegmentStart linking to a head outside the run.
//
// Damage is a *CorruptError whose Offset counts from the run's first
// byte; a record cut short at the end is damage too (a sealed segment ends
// at a record boundary). fn, when not nil, sees each event after it
// verified; its error is returned as is, and Event.Data is valid only
// during the call. Memory use is one record, however corrupt the input.
func VerifySegment(r io.Reader, prev *Link, fn func(Event) error) (SegmentReport, error) {
	sum := sha256.New()
	cr := &countingReader{r: io.TeeReader(r, sum)}
	res := scanResult{}
	if prev != nil {
		res.cont, res.head, res.length = true, prev.Head, prev.Length
	}
	res = scanRecords(bufio.NewReaderSize(cr, 64<<10), res, fn)
	rep := SegmentReport{Events: res.events, Head: res.head, Length: res.length, Bytes: cr.n}
	switch {
	case res.status == scanCallback:
		return rep, res.err
	case res.err != nil:
		return rep, fmt.Errorf("reading segment: %w", res.err)
	case res.status != scanOK:
		return rep, &CorruptError{Index: res.events, Offset: res.offset - int64(len(Magic)), Reason: res.reason}
	case res.events == 0:
		return rep, ErrEmptySegment
	}
	rep.First, rep.FirstKind, rep.Parent = res.first.Seq, res.first.Kind, res.first.Parent
	copy(rep.Sha256[:], sum.Sum(nil))
	return rep, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
