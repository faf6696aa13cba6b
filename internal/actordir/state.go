package actordir

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// State is a state as saved: HasState is false when the actor returned
// none (which is not the same as an empty state).
type State struct {
	HasState bool
	Data     []byte
}

// StateFile's format, version 1: the magic "TRSTATE", the version as one
// ASCII digit ('1'), one byte (1 when the actor returned a state, 0 for
// none), the SHA-256 of that byte and the state, then the state.
const (
	stateMagic      = "TRSTATE"
	stateVersion    = '1'
	stateHeaderSize = len(stateMagic) + 1 + 1 + sha256.Size
)

func stateDigest(s State) [sha256.Size]byte {
	h := sha256.New()
	flag := []byte{0}
	if s.HasState {
		flag[0] = 1
	}
	h.Write(flag)
	h.Write(s.Data)
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// WriteState saves s as dir's state, atomically.
func WriteState(dir string, s State) error {
	var buf bytes.Buffer
	buf.Grow(stateHeaderSize + len(s.Data))
	buf.WriteString(stateMagic)
	buf.WriteByte(stateVersion)
	if s.HasState {
		buf.WriteByte(1)
	} else {
		buf.WriteByte(0)
	}
	d := stateDigest(s)
	buf.Write(d[:])
	buf.Write(s.Data)
	return writeFileAtomic(dir, StateFile, buf.Bytes())
}

// ReadState reads dir's saved state, at most maxBytes of it; ok is false
// when there is none. A state file that is damaged, too large or of an
// unknown version is an error, never silently replaced by the initial
// state.
func ReadState(dir string, maxBytes int) (s State, ok bool, err error) {
	path := filepath.Join(dir, StateFile)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, fmt.Errorf("reading saved state: %w", err)
	}
	defer f.Close()
	// Read one byte past the largest valid file so an oversize file is
	// detected without reading it all.
	raw, err := io.ReadAll(io.LimitReader(f, int64(stateHeaderSize+maxBytes+1)))
	if err != nil {
		return State{}, false, fmt.Errorf("reading saved state %s: %w", path, err)
	}
	n := len(stateMagic)
	switch {
	case len(raw) <= n || string(raw[:n]) != stateMagic:
		return State{}, false, fmt.Errorf("saved state %s is not a Troupe state file", path)
	case raw[n] != stateVersion:
		found := fmt.Sprintf("byte 0x%02x", raw[n])
		if raw[n] >= '0' && raw[n] <= '9' {
			found = string(raw[n])
		}
		return State{}, false, &VersionError{Path: path, Found: found, Known: []int{stateVersion - '0'}}
	case len(raw) < stateHeaderSize:
		return State{}, false, fmt.Errorf("saved state %s is corrupt: %d bytes, shorter than its header", path, len(raw))
	case len(raw) > stateHeaderSize+maxBytes:
		return State{}, false, fmt.Errorf("saved state %s is larger than the %d bytes allowed", path, maxBytes)
	}
	flag := raw[n+1]
	if flag > 1 {
		return State{}, false, fmt.Errorf("saved state %s is corrupt: bad flag %d", path, flag)
	}
	s = State{HasState: flag == 1, Data: raw[stateHeaderSize:]}
	if !s.HasState && len(s.Data) > 0 {
		return State{}, false, fmt.Errorf("saved state %s is corrupt: data after an empty state", path)
	}
	if d := stateDigest(s); !bytes.Equal(d[:], raw[n+2:stateHeaderSize]) {
		return State{}, false, fmt.Errorf("saved state %s is corrupt: digest mismatch", path)
	}
	return s, true, nil
}
