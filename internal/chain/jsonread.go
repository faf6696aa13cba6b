package chain

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/troupe-dev/troupe/internal/textutil"
)

// MaxJSONLine bounds one line of a JSON-lines export: an event's data is at
// most 16 MiB, and base64 makes that about 22.
const MaxJSONLine = 32 << 20

// jsonEvent is one line of the export AppendJSON writes, or {"error": ...}
// when a writer (a host's chain endpoint) found its chain damaged while
// sending it.
type jsonEvent struct {
	Seq          uint64          `json:"seq"`
	Hash         string          `json:"hash"`
	Parent       string          `json:"parent"`
	Kind         string          `json:"kind"`
	Op           string          `json:"op"`
	Time         string          `json:"time"`
	Data         json.RawMessage `json:"data"`
	DataEncoding string          `json:"data_encoding"`
	Error        string          `json:"error"`
}

// ParseJSON decodes one line written by AppendJSON, the inverse of it: every
// byte of the event comes back, so its hash can be recomputed. It does not
// check the hash (ReadJSON does). Unknown fields are an error, and so is an
// {"error": ...} line, whose message it returns.
func ParseJSON(line []byte) (*Event, error) {
	var v jsonEvent
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not a chain event: %w", err)
	}
	if v.Error != "" {
		return nil, fmt.Errorf("the writer reports: %s", v.Error)
	}
	e := &Event{Seq: v.Seq, Kind: Kind(v.Kind), Op: v.Op}
	var err error
	if e.Hash, err = ParseHash(v.Hash); err != nil {
		return nil, fmt.Errorf("hash: %w", err)
	}
	if e.Parent, err = ParseHash(v.Parent); err != nil {
		return nil, fmt.Errorf("parent: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, v.Time)
	if err != nil {
		return nil, fmt.Errorf("time: %w", err)
	}
	e.Time = t.UnixNano()
	switch v.DataEncoding {
	case "":
		// json.RawMessage keeps the value's bytes exactly as written.
		e.Data = []byte(v.Data)
	case "base64":
		var s string
		if err := json.Unmarshal(v.Data, &s); err != nil {
			return nil, errors.New("data: base64 data must be a JSON string")
		}
		if e.Data, err = base64.StdEncoding.DecodeString(s); err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
	default:
		return nil, fmt.Errorf("unknown data_encoding %q", v.DataEncoding)
	}
	return e, nil
}

// ReadJSON reads a JSON-lines export (`troupe chain show --json`, a host's
// chain endpoint) and calls fn with each event, after checking it as Verify
// checks a file: its hash recomputed, its parent and seq following the
// event before, and the first event a chain's start (seq 0, zero parent) or
// a SegmentStart. Damage ends the read with an error wrapping ErrCorrupt
// (its index and reason in a *CorruptError); a read failure is returned as
// it is, and so is an error of fn.
func ReadJSON(r io.Reader, fn func(*Event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxJSONLine)
	var prev *Event
	for i := uint64(0); sc.Scan(); i++ {
		bad := func(format string, args ...any) error {
			return &CorruptError{Index: i, Offset: -1, Reason: fmt.Sprintf(format, args...)}
		}
		e, err := ParseJSON(sc.Bytes())
		if err != nil {
			return bad("%v", err)
		}
		if want := ComputeHash(e); want != e.Hash {
			return bad("event %d claims hash %s, its content hashes to %s", e.Seq, e.Hash.Short(), want.Short())
		}
		switch {
		case prev == nil && e.Kind != KindSegmentStart && (e.Seq != 0 || !e.Parent.IsZero()):
			return bad("the first event (seq %d, %s) is neither a chain's start nor a SegmentStart", e.Seq, e.Kind)
		case prev != nil && (e.Parent != prev.Hash || e.Seq != prev.Seq+1):
			return bad("event %d (parent %s) does not follow event %d (%s)", e.Seq, e.Parent.Short(), prev.Seq, prev.Hash.Short())
		}
		if err := fn(e); err != nil {
			return err
		}
		prev = e
	}
	return sc.Err()
}

// ParseHash reads a hash written as Hash.String writes it: 64 hex digits.
// It is the one parser of hashes in text (JSON exports, status heads).
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		// Quoted cut: s may be a hostile line of megabytes.
		return h, fmt.Errorf("%q is not %d hex digits", textutil.Truncate(s, 80), 2*len(h))
	}
	copy(h[:], b)
	return h, nil
}
