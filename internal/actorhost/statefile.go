package actorhost

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Files an actor keeps in its directory, beside the chain (chain.FileName).
const (
	// IdentityFileName holds the actor's id and name (JSON), written once
	// so a rerun with the same directory resumes as the same actor.
	IdentityFileName = "actor.json"
	// StateFileName holds the state init last returned.
	StateFileName = "state"
)

// stateMagic starts a state file; the format is the magic, one byte (1 when
// init returned some state, 0 for none), the SHA-256 of that byte and the
// state, then the state.
var stateMagic = []byte("TRSTATE1")

const stateHeaderSize = 8 + 1 + sha256.Size

// identity is what IdentityFileName holds.
type identity struct {
	ID        string `json:"id"`
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// savedState is a state as saved: hasState false when init returned none.
type savedState struct {
	hasState bool
	state    []byte
}

func stateDigest(hasState bool, state []byte) [sha256.Size]byte {
	h := sha256.New()
	flag := []byte{0}
	if hasState {
		flag[0] = 1
	}
	h.Write(flag)
	h.Write(state)
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// writeState saves s atomically in dir.
func writeState(dir string, s savedState) error {
	var buf bytes.Buffer
	buf.Grow(stateHeaderSize + len(s.state))
	buf.Write(stateMagic)
	if s.hasState {
		buf.WriteByte(1)
	} else {
		buf.WriteByte(0)
	}
	d := stateDigest(s.hasState, s.state)
	buf.Write(d[:])
	buf.Write(s.state)
	return writeFileAtomic(dir, StateFileName, buf.Bytes())
}

// readState loads the saved state from dir; ok is false when there is none.
// A state file that is corrupt is an error, never silently replaced by the
// initial state.
func readState(dir string, maxState int) (s savedState, ok bool, err error) {
	path := filepath.Join(dir, StateFileName)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return savedState{}, false, nil
	}
	if err != nil {
		return savedState{}, false, fmt.Errorf("reading saved state: %w", err)
	}
	defer f.Close()
	// Read one byte past the largest valid file so an oversize file is
	// detected without reading it all.
	raw, err := io.ReadAll(io.LimitReader(f, int64(stateHeaderSize+maxState+1)))
	if err != nil {
		return savedState{}, false, fmt.Errorf("reading saved state %s: %w", path, err)
	}
	if len(raw) < stateHeaderSize || !bytes.Equal(raw[:8], stateMagic) {
		return savedState{}, false, fmt.Errorf("saved state %s is not a Troupe state file", path)
	}
	if len(raw) > stateHeaderSize+maxState {
		return savedState{}, false, fmt.Errorf("saved state %s is larger than the %d bytes allowed", path, maxState)
	}
	flag := raw[8]
	if flag > 1 {
		return savedState{}, false, fmt.Errorf("saved state %s is corrupt: bad flag %d", path, flag)
	}
	s = savedState{hasState: flag == 1, state: raw[stateHeaderSize:]}
	if !s.hasState && len(s.state) > 0 {
		return savedState{}, false, fmt.Errorf("saved state %s is corrupt: data after an empty state", path)
	}
	if d := stateDigest(s.hasState, s.state); !bytes.Equal(d[:], raw[9:stateHeaderSize]) {
		return savedState{}, false, fmt.Errorf("saved state %s is corrupt: digest mismatch", path)
	}
	return s, true, nil
}

// readIdentity loads dir's identity; ok is false when there is none.
func readIdentity(dir string) (id identity, ok bool, err error) {
	path := filepath.Join(dir, IdentityFileName)
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return identity{}, false, nil
	}
	if err != nil {
		return identity{}, false, fmt.Errorf("reading actor identity: %w", err)
	}
	if err := json.Unmarshal(raw, &id); err != nil || id.ID == "" {
		return identity{}, false, fmt.Errorf("actor identity %s is corrupt", path)
	}
	return id, true, nil
}

func writeIdentity(dir string, id identity) error {
	raw, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(dir, IdentityFileName, append(raw, '\n'))
}

// writeFileAtomic replaces dir/name with data so that a crash leaves either
// the old file or the new one: a temporary file in the same directory,
// fsync, rename over the old, fsync of the directory.
func writeFileAtomic(dir, name string, data []byte) (err error) {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("saving %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("saving %s: %w", name, err)
	}
	if err = tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("saving %s: fsync: %w", name, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("saving %s: %w", name, err)
	}
	if err = os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("saving %s: %w", name, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		// The rename is durable only once the directory entry is.
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("saving %s: fsync of %s: %w", name, dir, err)
		}
	}
	return nil
}
