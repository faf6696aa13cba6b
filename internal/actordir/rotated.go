package actordir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
)

// A running actor's chain is rotated (chain.Chain.Rotate) once the
// archive can take its older events: chain.log is renamed
// chain.log.<length> (20 digits, so that names sort by length), holding
// the events before seq <length>, and goes on in a new chain.log that
// begins with a SegmentStart at <length>. Beside each rotated file, until
// it is removed, is chain.log.<length>.state: the actor's state as of
// <length>, which the archive needs to upload the file's last segment
// (the two saved-state slots move on with the actor).
var rotatedName = regexp.MustCompile(`^` + regexp.QuoteMeta(ChainFile) + `\.([0-9]{20})(\.state)?$`)

// RotatedChain is a rotated chain file of an actor's directory.
type RotatedChain struct {
	// Length is the seq after its last event: the new file's SegmentStart
	// continues it.
	Length uint64
	// Path is the file; StatePath the state beside it ("" when there is
	// none: a crash before the rotation, or a removal cut short).
	Path, StatePath string
	// Size is the file's size.
	Size int64
}

// RotatedChainPath is the name chain.log of dir takes when it is rotated
// at length.
func RotatedChainPath(dir string, length uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%s.%020d", ChainFile, length))
}

// RotatedStatePath is the state saved beside the rotated file of length.
func RotatedStatePath(dir string, length uint64) string {
	return RotatedChainPath(dir, length) + ".state"
}

// ListRotated returns dir's rotated chain files, oldest first, and the
// states no rotated file goes with (a crash between saving the state and
// rotating, or while removing a rotated file).
func ListRotated(dir string) (rotated []RotatedChain, orphans []string, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("listing rotated chains: %w", err)
	}
	states := map[uint64]string{}
	for _, e := range entries {
		m := rotatedName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		n, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if m[2] != "" {
			states[n] = path
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, nil, fmt.Errorf("listing rotated chains: %w", err)
		}
		rotated = append(rotated, RotatedChain{Length: n, Path: path, Size: info.Size()})
	}
	slices.SortFunc(rotated, func(a, b RotatedChain) int {
		switch {
		case a.Length < b.Length:
			return -1
		case a.Length > b.Length:
			return 1
		}
		return 0
	})
	for i := range rotated {
		if p, ok := states[rotated[i].Length]; ok {
			rotated[i].StatePath = p
			delete(states, rotated[i].Length)
		}
	}
	for _, p := range states {
		orphans = append(orphans, p)
	}
	slices.Sort(orphans)
	return rotated, orphans, nil
}

// WriteRotatedState saves s as the state of the rotation at length,
// durably (written aside, fsynced, renamed, the directory fsynced).
func WriteRotatedState(dir string, length uint64, s SavedState) error {
	return writeFileAtomic(dir, filepath.Base(RotatedStatePath(dir, length)), encodeStateV2(s), true)
}

// ReadRotatedState reads the state saved at path by WriteRotatedState, at
// most maxBytes of state.
func ReadRotatedState(path string, maxBytes int) (SavedState, error) {
	raw, ok, err := readStateFile(filepath.Dir(path), filepath.Base(path), stateV2HeaderSize+maxBytes)
	if err != nil {
		return SavedState{}, err
	}
	if !ok {
		return SavedState{}, fmt.Errorf("reading the rotated state %s: %w", path, os.ErrNotExist)
	}
	return decodeStateV2(path, raw, maxBytes)
}

// RemoveRotated removes a rotated file and then its state: a crash in
// between leaves an orphan state, which ListRotated reports.
func RemoveRotated(r RotatedChain) error {
	if err := os.Remove(r.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the rotated chain %s: %w", r.Path, err)
	}
	if r.StatePath != "" {
		if err := os.Remove(r.StatePath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing the rotated state %s: %w", r.StatePath, err)
		}
	}
	return nil
}
