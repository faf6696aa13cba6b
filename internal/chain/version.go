package chain

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// A chain file starts with a header that names its format version:
// HeaderPrefix, the version in decimal (no sign, no leading zero), a
// newline. Version 1's header is Magic. A reader refuses a version it does
// not know with a *VersionError, and never changes such a file: a newer
// build wrote it, and an older one must not cut or extend it.
const (
	// HeaderPrefix starts every chain file's header, of any version: a
	// file that starts otherwise is not a chain file.
	HeaderPrefix = "troupe-chain-v"
	// FormatVersion is the format version this build writes.
	FormatVersion = 1
	// maxVersionDigits bounds the version a header may name, and so how
	// many bytes a reader looks at before it calls a file foreign.
	maxVersionDigits = 9
	maxHeaderSize    = len(HeaderPrefix) + maxVersionDigits + 1
)

// knownVersions are the format versions this build reads, oldest first.
var knownVersions = []int{1}

// KnownVersions returns the format versions this build reads, oldest first.
func KnownVersions() []int { return append([]int(nil), knownVersions...) }

// ErrUnknownVersion matches every *VersionError (errors.Is).
var ErrUnknownVersion = errors.New("unknown chain format version")

// VersionError reports a chain file whose header names a format version
// this build does not read. It is no damage: a newer build wrote the file.
type VersionError struct {
	// Path is the file; "" when the chain was read from a stream.
	Path string
	// Version is the version the header names.
	Version int
}

func (e *VersionError) Error() string {
	what := "the chain"
	if e.Path != "" {
		what = "chain file " + e.Path
	}
	return fmt.Sprintf("%s is in format version %d; this build of troupe reads %s (a newer troupe wrote it: read it with that one)",
		what, e.Version, versionList(knownVersions))
}

// Is makes errors.Is(err, ErrUnknownVersion) true.
func (e *VersionError) Is(target error) bool { return target == ErrUnknownVersion }

// versionList says "version 1" or "versions 1, 2".
func versionList(vs []int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	if len(s) == 1 {
		return "version " + s[0]
	}
	return "versions " + strings.Join(s, ", ")
}

// headerKind is what the first bytes of a file are.
type headerKind int

const (
	headerV1      headerKind = iota // Magic: a version 1 chain
	headerTorn                      // a prefix of Magic at the end of the file: a torn creation
	headerUnknown                   // the header of a version this build does not read
	headerForeign                   // not a chain file
)

// parseHeader classifies b, the first bytes of a file (at most
// maxHeaderSize; fewer only when the file is that short), and returns the
// header's size for headerV1 and the version for headerUnknown.
func parseHeader(b []byte) (kind headerKind, size, version int) {
	switch {
	case bytes.HasPrefix(b, magicBytes):
		return headerV1, len(Magic), 1
	case len(b) < len(Magic) && bytes.HasPrefix(magicBytes, b):
		return headerTorn, 0, 0
	case !bytes.HasPrefix(b, []byte(HeaderPrefix)):
		return headerForeign, 0, 0
	}
	rest := b[len(HeaderPrefix):]
	nl := bytes.IndexByte(rest, '\n')
	if nl < 1 || nl > maxVersionDigits {
		return headerForeign, 0, 0
	}
	digits := string(rest[:nl])
	v, err := strconv.Atoi(digits)
	// One spelling per version: "1", never "01" or "+1".
	if err != nil || v < 1 || strconv.Itoa(v) != digits {
		return headerForeign, 0, 0
	}
	// Version 1, matched above as Magic, is the only one this build reads;
	// a build that reads more tells them apart here.
	return headerUnknown, len(HeaderPrefix) + nl + 1, v
}
