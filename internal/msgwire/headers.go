package msgwire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/troupe-dev/troupe/internal/actorhost"
)

// Headers of the host-to-host form (and the gateway's deliveries to a
// host). The local socket reads only traceparent.
const (
	// HeaderEpoch is the target's status.epoch the sender routed to: a
	// host that does not run the target at that epoch answers NotHere.
	HeaderEpoch = "Troupe-Epoch"
	// HeaderFrom is the sender, actorhost.Sender as JSON.
	HeaderFrom = "Troupe-From"
	// HeaderPath is a request's causal path: actor ids, comma-separated,
	// oldest first.
	HeaderPath = "Troupe-Path"
	// HeaderMessageID is the message's id, the same on both chains.
	HeaderMessageID = "Troupe-Message-Id"
	// HeaderTraceParent is the W3C trace context.
	HeaderTraceParent = "traceparent"
	// HeaderTimeout is the time a request has left, in milliseconds.
	HeaderTimeout = "Troupe-Timeout"
)

// Bounds of the headers: an honest peer stays far below them, and a
// hostile one gets a 400, never a large allocation.
const (
	// MaxFromBytes bounds Troupe-From.
	MaxFromBytes = 2048
	// MaxSenderField bounds each field of a Sender (an actor id, a
	// namespace, a name, an external identity).
	MaxSenderField = 512
	// MaxPathBytes bounds Troupe-Path.
	MaxPathBytes = 16 << 10
	// MaxPathLen bounds the actors on a causal path.
	MaxPathLen = 256
	// MaxIDBytes bounds Troupe-Message-Id and each id on a path.
	MaxIDBytes = 256
	// MaxTimeout bounds Troupe-Timeout: an hour, more than any request
	// timeout an actor may set.
	MaxTimeout = time.Hour
)

// EncodeFrom is s as Troupe-From.
func EncodeFrom(s actorhost.Sender) string {
	b, _ := json.Marshal(s) // strings only: cannot fail
	return string(b)
}

// DecodeFrom parses Troupe-From: a JSON object of actorhost.Sender, whose
// fields are printable UTF-8 without commas or controls, and which names
// an actor (actorID, with its namespace and name) or an external caller,
// not both.
func DecodeFrom(v string) (actorhost.Sender, error) {
	var s actorhost.Sender
	if v == "" {
		return s, errors.New(HeaderFrom + " is missing")
	}
	if len(v) > MaxFromBytes {
		return s, fmt.Errorf("%s is over %d bytes", HeaderFrom, MaxFromBytes)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(v)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return actorhost.Sender{}, fmt.Errorf("%s is not a sender: %w", HeaderFrom, err)
	}
	if dec.More() {
		return actorhost.Sender{}, fmt.Errorf("%s has trailing data", HeaderFrom)
	}
	for name, f := range map[string]string{"actorID": s.ActorID, "namespace": s.Namespace, "name": s.Name, "external": s.External} {
		if err := checkField(f, MaxSenderField); err != nil {
			return actorhost.Sender{}, fmt.Errorf("%s: %s %w", HeaderFrom, name, err)
		}
	}
	switch {
	case s.External != "" && (s.ActorID != "" || s.Name != ""):
		return actorhost.Sender{}, fmt.Errorf("%s names both an actor and an external caller", HeaderFrom)
	case s.External == "" && (s.ActorID == "" || s.Namespace == "" || s.Name == ""):
		return actorhost.Sender{}, fmt.Errorf("%s names no actor (actorID, namespace, name) nor an external caller", HeaderFrom)
	}
	return s, nil
}

// checkField accepts "" or printable UTF-8 of at most max bytes without
// commas (a path's separator) or spaces.
func checkField(f string, max int) error {
	if len(f) > max {
		return fmt.Errorf("is over %d bytes", max)
	}
	if !utf8.ValidString(f) {
		return errors.New("is not UTF-8")
	}
	for _, r := range f {
		if r <= ' ' || r == 0x7f || r == ',' || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("holds %q", r)
		}
	}
	return nil
}

// EncodePath is a causal path as Troupe-Path.
func EncodePath(path []string) string { return strings.Join(path, ",") }

// DecodePath parses Troupe-Path: "" is the empty path; else at most
// MaxPathLen non-empty ids, comma-separated.
func DecodePath(v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	if len(v) > MaxPathBytes {
		return nil, fmt.Errorf("%s is over %d bytes", HeaderPath, MaxPathBytes)
	}
	if n := strings.Count(v, ",") + 1; n > MaxPathLen {
		return nil, fmt.Errorf("%s has %d actors, more than %d", HeaderPath, n, MaxPathLen)
	}
	path := strings.Split(v, ",")
	for i, id := range path {
		if id == "" {
			return nil, fmt.Errorf("%s has an empty id at %d", HeaderPath, i)
		}
		if err := checkField(id, MaxIDBytes); err != nil {
			return nil, fmt.Errorf("%s: id %d %w", HeaderPath, i, err)
		}
	}
	return path, nil
}

// DecodeEpoch parses Troupe-Epoch: a decimal integer >= 0.
func DecodeEpoch(v string) (int64, error) {
	if v == "" {
		return 0, errors.New(HeaderEpoch + " is missing")
	}
	e, err := strconv.ParseInt(v, 10, 64)
	if err != nil || e < 0 {
		return 0, fmt.Errorf("%s is not an epoch: %q", HeaderEpoch, truncate(v))
	}
	return e, nil
}

// EncodeTimeout is d as Troupe-Timeout (at least 1 ms).
func EncodeTimeout(d time.Duration) string {
	ms := d.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	return strconv.FormatInt(ms, 10)
}

// DecodeTimeout parses Troupe-Timeout: 0 (no header) or milliseconds in
// [1, MaxTimeout].
func DecodeTimeout(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms < 1 || ms > MaxTimeout.Milliseconds() {
		return 0, fmt.Errorf("%s is not milliseconds in [1, %d]: %q", HeaderTimeout, MaxTimeout.Milliseconds(), truncate(v))
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// DecodeMessageID checks Troupe-Message-Id: "" (a new id) or a printable
// id of at most MaxIDBytes.
func DecodeMessageID(v string) (string, error) {
	if err := checkField(v, MaxIDBytes); err != nil {
		return "", fmt.Errorf("%s %w", HeaderMessageID, err)
	}
	return v, nil
}

func truncate(v string) string {
	if len(v) > 32 {
		return v[:32] + "..."
	}
	return v
}
