package actordir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/troupe-dev/troupe/internal/chain"
)

// Layout of a host's data directory (its --data-dir):
//
//	<root>/<namespace>/<name>/<actorID>/   an actor's directory (Path)
//	<root>/_components/                     the component cache
//	<root>/_wazero/                         compiled code
//
// The reserved names start with "_", which no namespace can: a namespace
// is a DNS label.
const (
	// ComponentCacheDir is the component cache under a data directory.
	ComponentCacheDir = "_components"
	// CompilationCacheDir is the engine's compilation cache under a data
	// directory.
	CompilationCacheDir = "_wazero"
)

// Files in an actor's directory.
const (
	// ChainFile is the actor's chain, in the chain's own format (package
	// chain, which also opens an actor directory given as a chain path).
	ChainFile = chain.FileName
	// StateFile is where Troupe v0.1.0 (and later builds, until states
	// were tied to the chain) saved the state init or tick last returned;
	// it is read when no slot (StateSlotFiles) holds a state, and removed
	// once one does.
	StateFile = "state"
	// IdentityFile holds the actor's id, name and namespace, written once:
	// a later run with the same directory resumes as the same actor.
	IdentityFile = "actor.json"
	// RunRecordFile is how the host's last run of the actor here ended.
	RunRecordFile = "host-run.json"
	// oldChainSuffix ends the name of a chain (or state) moved aside:
	// chain.log.<unix seconds>.old.
	oldChainSuffix = ".old"
)

// Path is the directory of the actor actorID, of the Actor
// namespace/name, under a host's data directory root. One Actor has a new
// directory for each actor id it was given (a deleted and recreated Actor
// is a new actor).
func Path(root, namespace, name, actorID string) string {
	return filepath.Join(root, namespace, name, actorID)
}

// ChainPath is the chain file in the actor directory dir.
func ChainPath(dir string) string { return filepath.Join(dir, ChainFile) }

// Newest returns the actor id, among the directories of the Actor
// namespace/name under root, whose chain was written last; "" when there
// is none.
func Newest(root, namespace, name string) string {
	base := filepath.Join(root, namespace, name)
	entries, err := os.ReadDir(base)
	if err != nil {
		return ""
	}
	var best string
	var bestTime time.Time
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		st, err := os.Stat(ChainPath(filepath.Join(base, e.Name())))
		if err == nil && st.ModTime().After(bestTime) {
			best, bestTime = e.Name(), st.ModTime()
		}
	}
	return best
}

// MoveChainAside renames the chain in dir to chain.log.<unix seconds of
// now>.old, kept for inspection while a new segment starts in its place,
// and returns the new name (a base name). The states saved with that
// chain go with it (state.a becomes state.a.<unix seconds>.old, ...): they
// belong to its events, and a new segment starts without them; so do its
// rotated files (chain.log.<length>.<unix seconds>.old).
func MoveChainAside(dir string, now time.Time) (string, error) {
	old := asideName(ChainFile, now)
	// Its rotated files (and their states) go first: they hold the
	// chain's older events, and a new segment's rotations must not find
	// them. Their names end in .old, which no rotated file's does.
	rotated, orphans, err := ListRotated(dir)
	if err != nil {
		return "", err
	}
	for _, r := range rotated {
		for _, p := range []string{r.Path, r.StatePath} {
			if p == "" {
				continue
			}
			if err := os.Rename(p, filepath.Join(dir, asideName(filepath.Base(p), now))); err != nil {
				return "", fmt.Errorf("moving the actor's old rotated chain aside: %w", err)
			}
		}
	}
	for _, p := range orphans {
		_ = os.Remove(p)
	}
	if err := os.Rename(ChainPath(dir), filepath.Join(dir, old)); err != nil {
		return "", fmt.Errorf("moving the actor's old chain aside: %w", err)
	}
	if err := MoveStatesAside(dir, now); err != nil {
		return old, err
	}
	return old, nil
}

// MoveStatesAside renames the saved states in dir (the slots and a legacy
// state file) to <name>.<unix seconds of now>.old.
func MoveStatesAside(dir string, now time.Time) error {
	for _, name := range append(StateSlotFiles[:], StateFile) {
		err := os.Rename(filepath.Join(dir, name), filepath.Join(dir, asideName(name, now)))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("moving the actor's saved state aside: %w", err)
		}
	}
	return nil
}

// HasSavedState reports whether dir holds a saved state file (a slot or a
// legacy state), intact or not.
func HasSavedState(dir string) bool {
	for _, name := range append(StateSlotFiles[:], StateFile) {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}

func asideName(name string, now time.Time) string {
	return fmt.Sprintf("%s.%d%s", name, now.Unix(), oldChainSuffix)
}
