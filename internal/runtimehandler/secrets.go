package runtimehandler

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"unsafe"
)

// Redacted replaces a secret value in text a guest hands the host. The
// host's scrubbing of statuses and Events (kubeenv.Env.Redact) uses it too,
// so they and the chain read alike.
const Redacted = "[redacted]"

// MinRedactBytes is the shortest secret value that is scrubbed: a shorter
// one ("1", "yes") would match all over ordinary text. Such a value can
// still reach the chain if the guest logs it.
const MinRedactBytes = 4

// Bounds of what an actor remembers: a guest can't make the host keep more
// (it can only read the values its manifest declares), but a manifest with
// a large Secret, or a Secret rotated for weeks under a running actor,
// must not grow an actor's memory or scan cost without end. Past either
// bound the oldest values are forgotten first: a guest that reads more
// than 256 distinct values and logs the first one again is not scrubbed.
const (
	maxSecretValues = 256
	maxSecretBytes  = 1 << 20
)

// smallSecretSet is the largest set scanned value by value (bytes.Index,
// which finds a value's first byte with SIMD); larger sets use the
// prefix-filter scan, whose cost does not grow with the number of values.
// BenchmarkRedact measures the crossover.
const smallSecretSet = 8

// secretSet is an immutable snapshot of the secret values an actor knows
// (every secret value of its env source when it started, and each one it
// was served since), shared by the call path and the engine through an
// atomic pointer: adding a value builds a new set.
type secretSet struct {
	values  []string            // oldest first, each >= MinRedactBytes bytes
	known   map[string]struct{} // the same values, to skip ones already held
	size    int                 // bytes held
	longest int                 // bytes of the longest value
	// markerOverlap is set when some value could be completed by the
	// Redacted marker itself (it ends with "[", starts with "d]", lies
	// within "[redacted]", ...): only then may a replacement form a new
	// occurrence, so only then is the output scanned again.
	markerOverlap bool
	// Sets larger than smallSecretSet are scanned position by position:
	// a position's first four bytes are looked up in filter (a 4096-bit
	// Bloom-like bitmap) and, on a hit, in byPrefix, which holds the
	// values of at most maxFilteredBytes; the long ones are searched for
	// one by one, as in a small set.
	filter   *[filterWords]uint64
	byPrefix map[uint32][]int32
	long     []int32
}

// maxFilteredBytes bounds the values the filter scan compares at every
// position whose prefix matches: a long value that repeats itself
// ("xxxx...") would otherwise cost its length at each position of a text
// made of it. bytes.Index searches long values in linear time.
const maxFilteredBytes = 64

const (
	filterBits  = 12
	filterWords = 1 << filterBits / 64
)

func prefixKey(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

func filterSlot(k uint32) uint32 { return (k * 0x9E3779B1) >> (32 - filterBits) }

// secretVariants returns the forms of a served value that are scrubbed:
// the value itself, the value without surrounding whitespace (a guest
// trims "token\n" from a file-made Secret before printing it), and each
// line of a multi-line value, because WASI output is recorded line by line
// and would otherwise carry a PEM key one harmless-looking line at a time.
func secretVariants(v string) []string {
	out := make([]string, 0, 2)
	add := func(s string) {
		if len(s) >= MinRedactBytes && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	add(v)
	add(strings.TrimSpace(v))
	if strings.IndexByte(v, '\n') >= 0 {
		for line := range strings.Lines(v) {
			add(strings.TrimSpace(line))
		}
	}
	return out
}

// with returns a set holding s's values and the variants of vs (s may be
// nil), forgetting the oldest values past the bounds, or s itself when it
// holds them all already.
func (s *secretSet) with(vs ...string) *secretSet {
	var add []string
	for _, v := range vs {
		for _, x := range secretVariants(v) {
			if slices.Contains(add, x) {
				continue
			}
			if s != nil {
				if _, ok := s.known[x]; ok {
					continue
				}
			}
			add = append(add, x)
		}
	}
	if len(add) == 0 {
		return s
	}
	var values []string
	size := 0
	if s != nil {
		values = append(values, s.values...)
		size = s.size
	}
	for _, x := range add {
		values = append(values, strings.Clone(x)) // not the source's memory
		size += len(x)
	}
	drop := 0
	for len(values)-drop > 1 && (len(values)-drop > maxSecretValues || size > maxSecretBytes) {
		size -= len(values[drop])
		drop++
	}
	return newSecretSet(values[drop:])
}

func newSecretSet(values []string) *secretSet {
	s := &secretSet{values: values, known: make(map[string]struct{}, len(values))}
	for _, v := range values {
		s.known[v] = struct{}{}
		s.size += len(v)
		s.longest = max(s.longest, len(v))
		s.markerOverlap = s.markerOverlap || overlapsMarker(v)
	}
	if len(values) > smallSecretSet {
		s.buildFilter()
	}
	return s
}

// buildFilter switches s to the prefix-filter scan.
func (s *secretSet) buildFilter() {
	s.filter = new([filterWords]uint64)
	s.byPrefix = make(map[uint32][]int32, len(s.values))
	s.long = nil
	for i, v := range s.values {
		if len(v) > maxFilteredBytes {
			s.long = append(s.long, int32(i))
			continue
		}
		k := prefixKey(unsafeBytes(v))
		slot := filterSlot(k)
		s.filter[slot/64] |= 1 << (slot % 64)
		s.byPrefix[k] = append(s.byPrefix[k], int32(i))
	}
}

// overlapsMarker reports whether v shares bytes with Redacted in a way
// that lets a replacement create an occurrence of v: v contains the
// marker, lies within it, or one's end is the other's start.
func overlapsMarker(v string) bool {
	if strings.Contains(v, Redacted) || strings.Contains(Redacted, v) {
		return true
	}
	for k := 1; k < len(Redacted) && k < len(v); k++ {
		if v[len(v)-k:] == Redacted[:k] || v[:k] == Redacted[len(Redacted)-k:] {
			return true
		}
	}
	return false
}

// contains reports whether text holds any of the set's values.
func (s *secretSet) contains(text []byte) bool {
	if s.filter == nil {
		for _, v := range s.values {
			if bytes.Contains(text, unsafeBytes(v)) {
				return true
			}
		}
		return false
	}
	for i := 0; i+MinRedactBytes <= len(text); i++ {
		k := prefixKey(text[i:])
		if slot := filterSlot(k); s.filter[slot/64]&(1<<(slot%64)) == 0 {
			continue
		}
		for _, idx := range s.byPrefix[k] {
			if bytes.HasPrefix(text[i:], unsafeBytes(s.values[idx])) {
				return true
			}
		}
	}
	for _, idx := range s.long {
		if bytes.Contains(text, unsafeBytes(s.values[idx])) {
			return true
		}
	}
	return false
}

// spans appends to dst the bounds of the occurrences of the set's values in
// text, in no particular order. Each value's occurrences are taken left
// to right without overlapping each other, as strings.ReplaceAll does:
// that keeps every scan linear in the text, and still leaves no whole
// value behind (an occurrence skipped because it overlaps an earlier one
// is partly covered), only, for a value that overlaps itself, a tail
// shorter than it ("aaaa" in "aaaaaaa" leaves "aaa").
func (s *secretSet) spans(dst [][2]int, text []byte) [][2]int {
	if s.filter == nil {
		for _, v := range s.values {
			dst = indexSpans(dst, text, unsafeBytes(v))
		}
		return dst
	}
	var nextBuf [maxSecretValues]int
	next := nextBuf[:len(s.values)] // where each value may match again
	for i := 0; i+MinRedactBytes <= len(text); i++ {
		k := prefixKey(text[i:])
		if slot := filterSlot(k); s.filter[slot/64]&(1<<(slot%64)) == 0 {
			continue
		}
		for _, idx := range s.byPrefix[k] {
			v := s.values[idx]
			if i >= next[idx] && bytes.HasPrefix(text[i:], unsafeBytes(v)) {
				dst = append(dst, [2]int{i, i + len(v)})
				next[idx] = i + len(v)
			}
		}
	}
	for _, idx := range s.long {
		dst = indexSpans(dst, text, unsafeBytes(s.values[idx]))
	}
	return dst
}

// indexSpans appends v's occurrences in text, left to right, without
// overlap.
func indexSpans(dst [][2]int, text, v []byte) [][2]int {
	for i := 0; ; {
		j := bytes.Index(text[i:], v)
		if j < 0 {
			return dst
		}
		i += j
		dst = append(dst, [2]int{i, i + len(v)})
		i += len(v)
	}
}

// replace returns text with every maximal run of bytes covered by an
// occurrence of a value replaced by Redacted. Replacing runs rather than
// values one after another is what keeps overlapping values ("abcdef",
// "defghi" in "abcdefghi") from leaving a tail of either behind.
func (s *secretSet) replace(text []byte) []byte {
	var buf [16][2]int // enough for the usual line without allocating
	spans := s.spans(buf[:0], text)
	if len(spans) == 0 {
		return text
	}
	slices.SortFunc(spans, func(a, b [2]int) int { return a[0] - b[0] })
	runs := spans[:1] // merged in place: overlapping or touching spans become one run
	for _, sp := range spans[1:] {
		if last := &runs[len(runs)-1]; sp[0] <= last[1] {
			last[1] = max(last[1], sp[1])
		} else {
			runs = append(runs, sp)
		}
	}
	size := len(text)
	for _, r := range runs {
		size += len(Redacted) - (r[1] - r[0])
	}
	out := make([]byte, 0, size)
	pos := 0
	for _, r := range runs {
		out = append(out, text[pos:r[0]]...)
		out = append(out, Redacted...)
		pos = r[1]
	}
	return append(out, text[pos:]...)
}

// redact returns text without any of the set's values and whether it
// changed anything: text itself when it holds none (no copy), else a new
// slice.
//
// One pass suffices unless a value overlaps the marker: a byte left
// uncovered lies in a stretch of text that held no value, so a value in
// the output must include part of a marker. For those rare values the
// output is scanned again a few times, and if a value still shows (one
// lying within "[redacted]" always will), the whole text gives way to the
// marker, or to nothing when the marker itself is a secret's home.
func (s *secretSet) redact(text []byte) ([]byte, bool) {
	if s == nil || len(text) < MinRedactBytes || !s.contains(text) {
		return text, false
	}
	out := s.replace(text)
	if !s.markerOverlap {
		return out, true
	}
	for range 3 {
		if !s.contains(out) {
			return out, true
		}
		out = s.replace(out)
	}
	if !s.contains(out) {
		return out, true
	}
	if s.contains([]byte(Redacted)) {
		return []byte{}, true
	}
	return []byte(Redacted), true
}

// rememberSecret adds a served secret value (and its variants) to what
// the actor scrubs: the env source may serve a value it did not know when
// the actor started (a Secret changed since).
func (a *Actor) rememberSecret(v string) {
	if len(v) < MinRedactBytes {
		return
	}
	if s := a.secrets.Load(); s != nil {
		if _, ok := s.known[v]; ok {
			return // the common case: the same value read again, no lock
		}
	}
	a.secretsMu.Lock()
	defer a.secretsMu.Unlock()
	old := a.secrets.Load()
	if next := old.with(v); next != old {
		a.secrets.Store(next)
	}
}

// RedactBytes returns b with every occurrence of a secret value the actor
// knows (at least MinRedactBytes long: its env source's secret values, and
// those get-env served it) replaced by Redacted. It returns b itself when
// there is nothing to replace, which costs a nil check for an actor
// without secrets. Safe for concurrent use; the engine scrubs the guest's
// error strings with it before recording or reporting them.
func (a *Actor) RedactBytes(b []byte) []byte {
	s := a.secrets.Load()
	if s == nil {
		return b
	}
	out, _ := s.redact(b)
	return out
}

// Redact is RedactBytes for a string.
func (a *Actor) Redact(s string) string {
	set := a.secrets.Load()
	if set == nil || len(s) < MinRedactBytes {
		return s
	}
	if out, changed := set.redact(unsafeBytes(s)); changed {
		return string(out)
	}
	return s
}

// echoable returns b scrubbed, for an error message that quotes its first
// maxQuotedGuest bytes: b is first cut to a window that holds every value
// starting in those bytes (and still tells the quote that b is longer), so
// a guest string as long as its memory costs no more than that to scan.
func (a *Actor) echoable(b []byte) []byte {
	s := a.secrets.Load()
	if s == nil {
		return b
	}
	if w := maxQuotedGuest + 1 + s.longest; len(b) > w {
		b = b[:w]
	}
	out, _ := s.redact(b)
	return out
}

// unsafeBytes views s as bytes without copying, for reading only.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// holdsSecret reports whether b contains a secret value the actor knows.
func (a *Actor) holdsSecret(b []byte) bool {
	s := a.secrets.Load()
	return s != nil && len(b) >= MinRedactBytes && s.contains(b)
}
