package actordir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/troupe-dev/troupe/internal/textutil"
)

// VersionError is a file in an actor's directory whose format version this
// build does not read, most likely written by a newer Troupe.
type VersionError struct {
	// Path is the file.
	Path string
	// Found is the version it carries, as written.
	Found string
	// Known are the versions this build reads.
	Known []int
}

func (e *VersionError) Error() string {
	known := make([]string, len(e.Known))
	for i, v := range e.Known {
		known[i] = strconv.Itoa(v)
	}
	return fmt.Sprintf("%s has format version %s, which this Troupe does not read (it reads version %s): it was written by a newer Troupe; run that one, or move the file away to start over",
		e.Path, e.Found, strings.Join(known, ", "))
}

// jsonVersion is the format version of the JSON files (identity, run
// record); a file without a "version" field was written before formats
// were versioned, and is version 1.
const jsonVersion = 1

// maxJSONFile bounds what a reader of the small JSON files reads: they are
// under a kilobyte, and a damaged one must not make a host read gigabytes.
const maxJSONFile = 64 << 10

// readJSON reads dir/name into v after checking its version; ok is false
// when the file does not exist.
func readJSON(dir, name, what string, v any) (ok bool, err error) {
	path := filepath.Join(dir, name)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the %s: %w", what, err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxJSONFile+1))
	if err != nil {
		return false, fmt.Errorf("reading the %s %s: %w", what, path, err)
	}
	if len(raw) > maxJSONFile {
		return false, fmt.Errorf("the %s %s is corrupt: larger than %d bytes", what, path, maxJSONFile)
	}
	// A map tells a "version" that is absent (v0.1.0: version 1) from
	// one that is null (unknown).
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return false, fmt.Errorf("the %s %s is corrupt: %w", what, path, err)
	}
	if ver, ok := fields["version"]; ok {
		var n int
		if string(ver) == "null" || json.Unmarshal(ver, &n) != nil || n != jsonVersion {
			return false, &VersionError{Path: path, Found: textutil.Truncate(string(ver), 32), Known: []int{jsonVersion}}
		}
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("the %s %s is corrupt: %w", what, path, err)
	}
	return true, nil
}

// writeJSON saves v, which carries its version, as dir/name atomically.
func writeJSON(dir, name string, v any) error { return writeJSONSync(dir, name, v, true) }

// writeJSONSync is writeJSON, syncing the directory or not (writeFileAtomic).
func writeJSONSync(dir, name string, v any, syncDir bool) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("saving %s: %w", name, err)
	}
	return writeFileAtomic(dir, name, append(raw, '\n'), syncDir)
}
