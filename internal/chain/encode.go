package chain

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"unicode/utf8"
)

// The canonical encoding and the file framing are specified byte for byte in
// docs/chain-format.md; testdata/golden.json pins them. Any change here is a
// new format version (FormatVersion, version.go), never an edit.

// Magic is the header of every format version 1 chain file (HeaderPrefix,
// "1", a newline) and the domain prefix of every event hash, so a hash of a
// troupe event can never be confused with a hash of anything else that
// happens to share its bytes.
const Magic = "troupe-chain-v1\n"

var magicBytes = []byte(Magic)

const (
	// MaxKindSize bounds an event's kind in bytes.
	MaxKindSize = 255
	// MaxOpSize bounds an event's operation name in bytes.
	MaxOpSize = 1024
	// MaxDataSize bounds an event's data. Guest-supplied data is bounded far
	// lower by the runtime handler; this bound keeps a reader from trusting a
	// corrupt length field.
	MaxDataSize = 16 << 20

	frameHeaderSize = 8                                       // u32 body length, u32 CRC-32C of the body
	fixedBodySize   = 8 + HashSize + 4 + 4 + 8 + 4 + HashSize // body without kind, op and data
	minBodySize     = fixedBodySize + 1                       // a kind is never empty
	maxBodySize     = fixedBodySize + MaxKindSize + MaxOpSize + MaxDataSize
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendBody appends the canonical encoding of an event without its hash:
// seq, parent, kind, op, time, data, integers big-endian, strings and data
// prefixed by their u32 length.
func appendBody(dst []byte, seq uint64, parent *Hash, kind Kind, op string, t int64, data []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, seq)
	dst = append(dst, parent[:]...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(kind)))
	dst = append(dst, kind...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(op)))
	dst = append(dst, op...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(t))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(data)))
	dst = append(dst, data...)
	return dst
}

// sumInto computes SHA-256(Magic || body) with a reused hasher and appends
// the hash to dst.
func sumInto(h hash.Hash, dst, body []byte) []byte {
	h.Reset()
	h.Write(magicBytes)
	h.Write(body)
	return h.Sum(dst)
}

// appendRecord appends one framed record to dst and returns it with the
// event's hash. The frame is: u32 body length, u32 CRC-32C (Castagnoli) of
// the body, body = canonical encoding followed by the 32-byte hash.
func appendRecord(dst []byte, h hash.Hash, seq uint64, parent *Hash, kind Kind, op string, t int64, data []byte) ([]byte, Hash) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	bodyStart := len(dst)
	dst = appendBody(dst, seq, parent, kind, op, t, data)
	dst = sumInto(h, dst, dst[bodyStart:])
	var sum Hash
	copy(sum[:], dst[len(dst)-HashSize:])
	body := dst[bodyStart:]
	binary.BigEndian.PutUint32(dst[start:], uint32(len(body)))
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(body, castagnoli))
	return dst, sum
}

// ComputeHash returns the hash an event must carry: SHA-256 over Magic and
// the canonical encoding of every field but Hash.
func ComputeHash(e *Event) Hash {
	body := appendBody(make([]byte, 0, fixedBodySize+len(e.Kind)+len(e.Op)+len(e.Data)),
		e.Seq, &e.Parent, e.Kind, e.Op, e.Time, e.Data)
	return sha256.Sum256(append(magicBytes[:len(magicBytes):len(magicBytes)], body...))
}

// EncodeRecord returns the framed file record of e, hash included as given.
func EncodeRecord(e *Event) []byte {
	body := appendBody(nil, e.Seq, &e.Parent, e.Kind, e.Op, e.Time, e.Data)
	body = append(body, e.Hash[:]...)
	rec := make([]byte, frameHeaderSize, frameHeaderSize+len(body))
	binary.BigEndian.PutUint32(rec, uint32(len(body)))
	binary.BigEndian.PutUint32(rec[4:], crc32.Checksum(body, castagnoli))
	return append(rec, body...)
}

var errMalformed = errors.New("malformed record body")

// decodeBody parses a record body (canonical encoding + hash) without
// checking the hash. Data aliases body; intern, when not nil, shares the
// strings of repeated op names.
func decodeBody(body []byte, intern map[string]string) (Event, error) {
	var e Event
	if len(body) < minBodySize || len(body) > maxBodySize {
		return e, fmt.Errorf("%w: size %d outside [%d, %d]", errMalformed, len(body), minBodySize, maxBodySize)
	}
	p := body
	e.Seq = binary.BigEndian.Uint64(p)
	copy(e.Parent[:], p[8:8+HashSize])
	p = p[8+HashSize:]
	kind, p, err := lenPrefixed(p, MaxKindSize, "kind")
	if err != nil {
		return e, err
	}
	op, p, err := lenPrefixed(p, MaxOpSize, "op")
	if err != nil {
		return e, err
	}
	if len(p) < 8+4 {
		return e, fmt.Errorf("%w: truncated before time", errMalformed)
	}
	e.Time = int64(binary.BigEndian.Uint64(p))
	p = p[8:]
	data, p, err := lenPrefixed(p, MaxDataSize, "data")
	if err != nil {
		return e, err
	}
	if len(p) != HashSize {
		return e, fmt.Errorf("%w: %d bytes after data, want the %d-byte hash", errMalformed, len(p), HashSize)
	}
	copy(e.Hash[:], p)
	if len(kind) == 0 || !utf8.Valid(kind) || !utf8.Valid(op) {
		return e, fmt.Errorf("%w: kind and op must be UTF-8 and the kind non-empty", errMalformed)
	}
	e.Kind = internKind(kind)
	e.Op = internString(intern, op)
	e.Data = data
	return e, nil
}

func lenPrefixed(p []byte, limit int, what string) (v, rest []byte, err error) {
	if len(p) < 4 {
		return nil, nil, fmt.Errorf("%w: truncated before %s length", errMalformed, what)
	}
	n := binary.BigEndian.Uint32(p)
	p = p[4:]
	if uint64(n) > uint64(limit) || uint64(n) > uint64(len(p)) {
		return nil, nil, fmt.Errorf("%w: %s length %d exceeds the record or the limit %d", errMalformed, what, n, limit)
	}
	return p[:n], p[n:], nil
}

// internKind avoids an allocation per decoded event for the known kinds.
func internKind(b []byte) Kind {
	switch string(b) {
	case string(KindRuntimeOperation):
		return KindRuntimeOperation
	case string(KindLog):
		return KindLog
	case string(KindMetric):
		return KindMetric
	case string(KindCustom):
		return KindCustom
	case string(KindActorStart):
		return KindActorStart
	case string(KindInitCall):
		return KindInitCall
	case string(KindInitResult):
		return KindInitResult
	case string(KindShutdown):
		return KindShutdown
	case string(KindActorStop):
		return KindActorStop
	case string(KindRestart):
		return KindRestart
	case string(KindSegmentStart):
		return KindSegmentStart
	case string(KindTick):
		return KindTick
	case string(KindMessageSent):
		return KindMessageSent
	case string(KindRequestSent):
		return KindRequestSent
	case string(KindResponseReceived):
		return KindResponseReceived
	case string(KindMessageReceived):
		return KindMessageReceived
	case string(KindRequestReceived):
		return KindRequestReceived
	case string(KindHandlerResult):
		return KindHandlerResult
	}
	return Kind(b)
}

// internString bounds the table so a hostile file of distinct names cannot
// grow it without limit.
func internString(m map[string]string, b []byte) string {
	if m == nil {
		return string(b)
	}
	if s, ok := m[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(m) < 4096 {
		m[s] = s
	}
	return s
}

// checkHash reports whether body's trailing hash is SHA-256(Magic || rest).
func checkHash(h hash.Hash, scratch []byte, body []byte) ([]byte, bool) {
	n := len(body) - HashSize
	scratch = sumInto(h, scratch[:0], body[:n])
	return scratch, bytes.Equal(scratch, body[n:])
}

// validKind reports whether k may be appended.
func validKind(k Kind) error {
	if k == "" {
		return errors.New("empty kind")
	}
	if len(k) > MaxKindSize {
		return fmt.Errorf("kind is %d bytes, the limit is %d", len(k), MaxKindSize)
	}
	if !utf8.ValidString(string(k)) {
		return errors.New("kind is not valid UTF-8")
	}
	return nil
}
