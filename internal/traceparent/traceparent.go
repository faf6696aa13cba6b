package traceparent

import (
	"crypto/rand"
	"encoding/hex"
)

// Len is the length of a version-00 traceparent:
// "00-" + 32 hex trace id + "-" + 16 hex parent id + "-" + 2 hex flags.
const Len = 55

// sampled is the flags of the traces Troupe starts: recorded.
const sampled = "01"

// New starts a trace: a random trace id and parent id.
func New() string {
	var b [24]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	return format(b[:16], b[16:], sampled)
}

// Child continues parent's trace with a new parent id, keeping its flags;
// an invalid or empty parent starts a new trace, as the W3C rules say a
// receiver does.
func Child(parent string) string {
	if !Valid(parent) {
		return New()
	}
	var span [8]byte
	_, _ = rand.Read(span[:])
	// The trace id is copied as the valid parent spells it (lowercase
	// hex), not decoded and encoded again.
	var buf [Len]byte
	b := append(append(buf[:0], parent[:35]...), '-')
	b = hex.AppendEncode(b, span[:])
	b = append(b, '-')
	b = append(b, parent[53:55]...)
	return string(b)
}

func format(traceID, spanID []byte, flags string) string {
	var arr [Len]byte
	buf := append(arr[:0], "00-"...)
	buf = hex.AppendEncode(buf, traceID)
	buf = append(buf, '-')
	buf = hex.AppendEncode(buf, spanID)
	buf = append(buf, '-')
	buf = append(buf, flags...)
	return string(buf)
}

// Valid reports whether s is a version-00 traceparent with lowercase hex
// ids that are not all zero.
func Valid(s string) bool {
	if len(s) != Len || s[0:3] != "00-" || s[35] != '-' || s[52] != '-' {
		return false
	}
	return lowerHex(s[3:35]) && !zeros(s[3:35]) && lowerHex(s[36:52]) && !zeros(s[36:52]) && lowerHex(s[53:55])
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func zeros(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

// TraceID returns the trace id of a valid traceparent, "" otherwise.
func TraceID(s string) string {
	if !Valid(s) {
		return ""
	}
	return s[3:35]
}
