package theater

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// HashSize is the size of a Theater event hash (SHA-1).
const HashSize = sha1.Size

// Event is one event of a Theater chain export.
type Event struct {
	Hash []byte
	// ParentHash is nil for the first event (JSON null).
	ParentHash []byte
	EventType  string
	Data       []byte
}

// wireEvent mirrors the export's JSON; RawMessage keeps "missing" apart from
// "null" and lets the strings be checked for UTF-8 before Go repairs them.
type wireEvent struct {
	Hash       json.RawMessage `json:"hash"`
	ParentHash json.RawMessage `json:"parent_hash"`
	EventType  json.RawMessage `json:"event_type"`
	Data       json.RawMessage `json:"data"`
}

// FormatError is a malformed export: bad JSON, or an event that lacks a
// field or has one of the wrong shape.
type FormatError struct {
	// Index is the event's position, or -1 when the array itself is bad.
	Index  int
	Reason string
}

func (e *FormatError) Error() string {
	if e.Index < 0 {
		return "theater chain: " + e.Reason
	}
	return fmt.Sprintf("theater chain: event %d: %s", e.Index, e.Reason)
}

// Read parses a Theater chain export, a JSON array of events, calling fn for
// each in order without holding the whole array in memory. Unknown fields
// are an error: the hash covers exactly the four known fields, so an event
// with more could not be verified.
func Read(r io.Reader, fn func(i int, e Event) error) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	tok, err := dec.Token()
	if err != nil {
		return &FormatError{Index: -1, Reason: "not a JSON array: " + err.Error()}
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return &FormatError{Index: -1, Reason: fmt.Sprintf("want a JSON array of events, found %v", tok)}
	}
	for i := 0; dec.More(); i++ {
		var w wireEvent
		if err := dec.Decode(&w); err != nil {
			return &FormatError{Index: i, Reason: err.Error()}
		}
		e, err := w.event()
		if err != nil {
			return &FormatError{Index: i, Reason: err.Error()}
		}
		if err := fn(i, e); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return &FormatError{Index: -1, Reason: "unterminated array: " + err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &FormatError{Index: -1, Reason: "data after the array"}
	}
	return nil
}

func (w *wireEvent) event() (Event, error) {
	var e Event
	var err error
	if w.Hash == nil {
		return e, errors.New(`missing "hash"`)
	}
	if e.Hash, err = byteArray(w.Hash, "hash"); err != nil {
		return e, err
	}
	if w.ParentHash == nil {
		return e, errors.New(`missing "parent_hash" (null for the first event)`)
	}
	if string(w.ParentHash) != "null" {
		if e.ParentHash, err = byteArray(w.ParentHash, "parent_hash"); err != nil {
			return e, err
		}
		if e.ParentHash == nil {
			e.ParentHash = []byte{}
		}
	}
	if w.EventType == nil {
		return e, errors.New(`missing "event_type"`)
	}
	if !utf8.Valid(w.EventType) {
		return e, errors.New(`"event_type" is not valid UTF-8`)
	}
	if err := json.Unmarshal(w.EventType, &e.EventType); err != nil {
		return e, fmt.Errorf(`"event_type": %w`, err)
	}
	if w.Data == nil {
		return e, errors.New(`missing "data"`)
	}
	if e.Data, err = byteArray(w.Data, "data"); err != nil {
		return e, err
	}
	return e, nil
}

// byteArray parses a JSON array of integers 0..255.
func byteArray(raw json.RawMessage, field string) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return nil, fmt.Errorf("%q must be an array of integers 0-255", field)
	}
	var nums []json.Number
	if err := json.Unmarshal(raw, &nums); err != nil {
		return nil, fmt.Errorf("%q must be an array of integers 0-255: %w", field, err)
	}
	out := make([]byte, len(nums))
	for i, n := range nums {
		v, err := strconv.ParseUint(string(n), 10, 8)
		if err != nil {
			return nil, fmt.Errorf("%q[%d] = %s is not an integer 0-255", field, i, n)
		}
		out[i] = byte(v)
	}
	return out, nil
}

// AppendCanonical appends the serialization Theater hashes: serde_json's
// compact output of {"hash","parent_hash","event_type","data"} in that order,
// byte arrays as arrays of integers, only '"', '\' and control characters
// escaped, non-ASCII left as UTF-8.
func AppendCanonical(dst []byte, e *Event) []byte {
	dst = append(dst, `{"hash":`...)
	dst = appendArray(dst, e.Hash)
	dst = append(dst, `,"parent_hash":`...)
	if e.ParentHash == nil {
		dst = append(dst, "null"...)
	} else {
		dst = appendArray(dst, e.ParentHash)
	}
	dst = append(dst, `,"event_type":`...)
	dst = appendSerdeString(dst, e.EventType)
	dst = append(dst, `,"data":`...)
	dst = appendArray(dst, e.Data)
	return append(dst, '}')
}

func appendArray(dst, b []byte) []byte {
	dst = append(dst, '[')
	for i, c := range b {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendUint(dst, uint64(c), 10)
	}
	return append(dst, ']')
}

// appendSerdeString escapes as serde_json's compact formatter does.
func appendSerdeString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// ComputeHash returns the hash e must carry when its predecessor's hash is
// parent (nil for the first event): SHA-1 of the canonical serialization
// with hash [] and parent_hash set to parent.
func ComputeHash(e *Event, parent []byte) [HashSize]byte {
	c := Event{Hash: []byte{}, ParentHash: parent, EventType: e.EventType, Data: e.Data}
	return sha1.Sum(AppendCanonical(nil, &c))
}

// Report is the result of verifying a Theater chain.
type Report struct {
	// Events is the number of valid events before the first bad one (all
	// of them when the chain is intact).
	Events int
	// Head is the last valid event's hash.
	Head []byte
	// FirstBad is the index of the first bad event, or -1.
	FirstBad int
	// Reason says why it is bad.
	Reason string
}

// OK reports whether every event verified.
func (r Report) OK() bool { return r.FirstBad < 0 }

// Verify checks every hash and parent link of a Theater chain export. A
// malformed export is reported as bad at the event that could not be read;
// the error is for read failures only.
func Verify(r io.Reader) (Report, error) { return VerifyEach(r, nil) }

// VerifyEach is Verify that also calls fn, when not nil, with each event
// that verified, in order; fn's error stops the walk and is returned.
func VerifyEach(r io.Reader, fn func(i int, e Event) error) (Report, error) {
	rep := Report{FirstBad: -1}
	var prev []byte
	var fnErr error
	err := Read(r, func(i int, e Event) error {
		if reason := check(&e, i, prev); reason != "" {
			rep.FirstBad, rep.Reason = i, reason
			return errStop
		}
		if fn != nil {
			if fnErr = fn(i, e); fnErr != nil {
				return errStop
			}
		}
		prev = e.Hash
		rep.Events, rep.Head = i+1, e.Hash
		return nil
	})
	var fe *FormatError
	switch {
	case fnErr != nil:
		return rep, fnErr
	case err == nil, errors.Is(err, errStop):
		return rep, nil
	case errors.As(err, &fe):
		rep.FirstBad, rep.Reason = max(fe.Index, rep.Events), fe.Reason
		return rep, nil
	}
	return rep, err
}

var errStop = errors.New("stop")

func check(e *Event, i int, prev []byte) string {
	switch {
	case i == 0 && e.ParentHash != nil:
		return fmt.Sprintf("first event has parent_hash %s, want null", hex.EncodeToString(e.ParentHash))
	case i > 0 && e.ParentHash == nil:
		return "parent_hash is null after the first event"
	case i > 0 && !bytes.Equal(e.ParentHash, prev):
		return fmt.Sprintf("broken link: parent_hash %s, previous event's hash is %s",
			hex.EncodeToString(e.ParentHash), hex.EncodeToString(prev))
	}
	want := ComputeHash(e, prev)
	if !bytes.Equal(e.Hash, want[:]) {
		return fmt.Sprintf("hash mismatch: recorded %s, computed %x", hex.EncodeToString(e.Hash), want)
	}
	return ""
}
