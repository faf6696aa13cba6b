package actordir

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/troupe-dev/troupe/internal/fsync"
)

// State is a state as saved: HasState is false when the actor returned
// none (which is not the same as an empty state).
type State struct {
	HasState bool
	Data     []byte
}

// ErrCorruptState matches (errors.Is) every error about a state file whose
// bytes are damaged: a torn write or worse. Which of those it is only the
// chain can tell (package actorhost decides).
var ErrCorruptState = errors.New("saved state is corrupt")

// A state file starts with the magic "TRSTATE" and its format version as
// one ASCII digit.
//
// Version 1, the legacy StateFile that Troupe v0.1.0 and later wrote until
// states were tied to the chain: the magic, '1', one byte (1 when the
// actor returned a state, 0 for none), the SHA-256 of that byte and the
// state, then the state. Read, never written.
//
// Version 2, the state slots (StateSlotFiles): the magic, '2', the flag
// byte, the seq of the chain event that records the state and the chain's
// durable length when the file was written (u64 big-endian each), the
// SHA-256 of the flag, both numbers and the state, then the state.
const (
	stateMagic        = "TRSTATE"
	stateV1           = '1'
	stateV2           = '2'
	stateV1HeaderSize = len(stateMagic) + 1 + 1 + sha256.Size
	stateV2HeaderSize = len(stateMagic) + 1 + 1 + 8 + 8 + sha256.Size
)

// StateSlotFiles are the two files an actor's state is saved in, in turn.
// The one being written may be torn by a crash; the other then holds the
// state the chain records last (package actorhost keeps it so).
var StateSlotFiles = [2]string{"state.a", "state.b"}

// SavedState is a state saved in a slot, with the place in the chain it
// belongs to.
type SavedState struct {
	State
	// Seq is the seq of the chain event that records this state, appended
	// once the slot is written.
	Seq uint64
	// Durable is the chain's durable length when the slot was written: the
	// chain reached at least that far, whatever happens to the slot's own
	// event.
	Durable uint64
}

// StateSlot is what one slot holds.
type StateSlot struct {
	// Name is the slot's file name.
	Name string
	// Present is false when the file does not exist.
	Present bool
	// Saved is the state, when the file is present and intact.
	Saved SavedState
	// Err, for a present file, is its damage (it matches ErrCorruptState).
	Err error
}

func stateV1Digest(s State) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte{flagOf(s)})
	h.Write(s.Data)
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

func stateV2Digest(s SavedState) [sha256.Size]byte {
	h := sha256.New()
	var hdr [17]byte
	hdr[0] = flagOf(s.State)
	binary.BigEndian.PutUint64(hdr[1:], s.Seq)
	binary.BigEndian.PutUint64(hdr[9:], s.Durable)
	h.Write(hdr[:])
	h.Write(s.Data)
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

func flagOf(s State) byte {
	if s.HasState {
		return 1
	}
	return 0
}

// encodeStateV2 is a slot file's bytes.
func encodeStateV2(s SavedState) []byte {
	buf := make([]byte, 0, stateV2HeaderSize+len(s.Data))
	buf = append(buf, stateMagic...)
	buf = append(buf, stateV2, flagOf(s.State))
	buf = binary.BigEndian.AppendUint64(buf, s.Seq)
	buf = binary.BigEndian.AppendUint64(buf, s.Durable)
	d := stateV2Digest(s)
	buf = append(buf, d[:]...)
	return append(buf, s.Data...)
}

// WriteStateSlot saves s in slot 0 or 1 of dir; it is durable when
// WriteStateSlot returns. The file is overwritten in place, not replaced:
// the other slot is what survives a crash in the middle, and a state of
// the same size as the last costs one fdatasync and no metadata.
func WriteStateSlot(dir string, slot int, s SavedState) error {
	_, err := SaveStateSlot(dir, slot, s)
	return err
}

// SaveStateSlot is WriteStateSlot, and reports whether it synced dir's
// entries (it created the slot's file): then every entry made in dir
// before it was called is durable too.
func SaveStateSlot(dir string, slot int, s SavedState) (dirSynced bool, err error) {
	name := StateSlotFiles[slot]
	path := filepath.Join(dir, name)
	created := false
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		created = true
	}
	if err != nil {
		return false, fmt.Errorf("saving the state in %s: %w", name, err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("saving the state in %s: %w", name, cerr)
		}
	}()
	buf := encodeStateV2(s)
	if _, err := f.WriteAt(buf, 0); err != nil {
		return false, fmt.Errorf("saving the state in %s: %w", name, err)
	}
	st, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("saving the state in %s: %w", name, err)
	}
	if st.Size() > int64(len(buf)) {
		if err := f.Truncate(int64(len(buf))); err != nil {
			return false, fmt.Errorf("saving the state in %s: %w", name, err)
		}
	}
	if err := fsync.Data(f); err != nil {
		return false, fmt.Errorf("saving the state in %s: %w", name, err)
	}
	if created {
		// A new file survives a crash only with its directory entry.
		if err := fsync.Dir(dir); err != nil {
			return false, fmt.Errorf("saving the state in %s: %w", name, err)
		}
	}
	return created, nil
}

// ReadStateSlots reads both slots of dir, at most maxBytes of state each.
// A slot that is damaged is reported in its Err; a slot of a version this
// build does not read, one larger than maxBytes, or one that can't be
// read is an error of ReadStateSlots.
func ReadStateSlots(dir string, maxBytes int) (slots [2]StateSlot, err error) {
	for i, name := range StateSlotFiles {
		slots[i].Name = name
		raw, ok, err := readStateFile(dir, name, stateV2HeaderSize+maxBytes)
		if err != nil {
			return slots, err
		}
		if !ok {
			continue
		}
		slots[i].Present = true
		slots[i].Saved, slots[i].Err = decodeStateV2(filepath.Join(dir, name), raw, maxBytes)
		var ve *VersionError
		if errors.As(slots[i].Err, &ve) || (slots[i].Err != nil && !errors.Is(slots[i].Err, ErrCorruptState)) {
			return slots, slots[i].Err
		}
	}
	return slots, nil
}

func decodeStateV2(path string, raw []byte, maxBytes int) (SavedState, error) {
	if err := checkStateHeader(path, raw, stateV2, stateV2HeaderSize, maxBytes); err != nil {
		return SavedState{}, err
	}
	n := len(stateMagic)
	flag := raw[n+1]
	if flag > 1 {
		return SavedState{}, corruptState(path, "bad flag %d", flag)
	}
	s := SavedState{
		State:   State{HasState: flag == 1, Data: raw[stateV2HeaderSize:]},
		Seq:     binary.BigEndian.Uint64(raw[n+2:]),
		Durable: binary.BigEndian.Uint64(raw[n+10:]),
	}
	if !s.HasState && len(s.Data) > 0 {
		return SavedState{}, corruptState(path, "data after an empty state")
	}
	if d := stateV2Digest(s); !bytes.Equal(d[:], raw[n+18:stateV2HeaderSize]) {
		return SavedState{}, corruptState(path, "digest mismatch")
	}
	return s, nil
}

// ReadState reads dir's legacy state file (StateFile, version 1), at most
// maxBytes of state; ok is false when there is none. A state file that is
// damaged (ErrCorruptState), too large or of an unknown version is an
// error.
func ReadState(dir string, maxBytes int) (s State, ok bool, err error) {
	raw, ok, err := readStateFile(dir, StateFile, stateV1HeaderSize+maxBytes)
	if err != nil || !ok {
		return State{}, false, err
	}
	path := filepath.Join(dir, StateFile)
	if err := checkStateHeader(path, raw, stateV1, stateV1HeaderSize, maxBytes); err != nil {
		return State{}, false, err
	}
	n := len(stateMagic)
	flag := raw[n+1]
	if flag > 1 {
		return State{}, false, corruptState(path, "bad flag %d", flag)
	}
	s = State{HasState: flag == 1, Data: raw[stateV1HeaderSize:]}
	if !s.HasState && len(s.Data) > 0 {
		return State{}, false, corruptState(path, "data after an empty state")
	}
	if d := stateV1Digest(s); !bytes.Equal(d[:], raw[n+2:stateV1HeaderSize]) {
		return State{}, false, corruptState(path, "digest mismatch")
	}
	return s, true, nil
}

// WriteLegacyState writes s as a version 1 StateFile, as Troupe v0.1.0
// did; for tests of what reads such directories.
func WriteLegacyState(dir string, s State) error {
	buf := make([]byte, 0, stateV1HeaderSize+len(s.Data))
	buf = append(buf, stateMagic...)
	buf = append(buf, stateV1, flagOf(s))
	d := stateV1Digest(s)
	buf = append(buf, d[:]...)
	buf = append(buf, s.Data...)
	return writeFileAtomic(dir, StateFile, buf, true)
}

// readStateFile reads dir/name, one byte past limit so that an oversize
// file is noticed without reading it all; ok is false when it does not
// exist.
func readStateFile(dir, name string, limit int) (raw []byte, ok bool, err error) {
	path := filepath.Join(dir, name)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading saved state: %w", err)
	}
	defer f.Close()
	raw, err = io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, false, fmt.Errorf("reading saved state %s: %w", path, err)
	}
	return raw, true, nil
}

// checkStateHeader checks the magic, the version and the size of a state
// file of version v.
func checkStateHeader(path string, raw []byte, v byte, headerSize, maxBytes int) error {
	n := len(stateMagic)
	switch {
	case len(raw) <= n || string(raw[:n]) != stateMagic:
		return corruptState(path, "not a Troupe state file")
	case raw[n] != v:
		found := fmt.Sprintf("byte 0x%02x", raw[n])
		if raw[n] >= '0' && raw[n] <= '9' {
			found = string(raw[n])
		}
		return &VersionError{Path: path, Found: found, Known: []int{int(v - '0')}}
	case len(raw) < headerSize:
		return corruptState(path, "%d bytes, shorter than its header", len(raw))
	case len(raw) > headerSize+maxBytes:
		return fmt.Errorf("saved state %s is larger than the %d bytes allowed", path, maxBytes)
	}
	return nil
}

func corruptState(path, format string, args ...any) error {
	return &corruptStateError{path: path, reason: fmt.Sprintf(format, args...)}
}

type corruptStateError struct{ path, reason string }

func (e *corruptStateError) Error() string {
	return fmt.Sprintf("saved state %s is corrupt: %s", e.path, e.reason)
}

func (e *corruptStateError) Is(target error) bool { return target == ErrCorruptState }
