package actordir

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadState: no content of a state file panics its reader, and what
// it accepts writes back to the same bytes.
func FuzzReadState(f *testing.F) {
	good, _ := os.ReadFile(filepath.Join(golden, StateFile))
	f.Add(good)
	f.Add([]byte("TRSTATE1"))
	f.Add([]byte("TRSTATE2\x01"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, raw []byte) {
		path := filepath.Join(dir, StateFile)
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		s, ok, err := ReadState(dir, 64)
		if err != nil || !ok {
			return
		}
		if err := WriteLegacyState(dir, s); err != nil {
			t.Fatal(err)
		}
		again, _ := os.ReadFile(path)
		if string(again) != string(raw) {
			t.Fatalf("accepted %q, wrote back %q", raw, again)
		}
	})
}

// FuzzReadStateSlots: no content of a state slot panics its reader, and
// what it accepts writes back to the same bytes.
func FuzzReadStateSlots(f *testing.F) {
	f.Add(encodeStateV2(SavedState{State: State{HasState: true, Data: []byte("state")}, Seq: 41, Durable: 40}))
	f.Add(encodeStateV2(SavedState{}))
	f.Add([]byte("TRSTATE2\x01"))
	f.Add([]byte("TRSTATE3"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, raw []byte) {
		path := filepath.Join(dir, StateSlotFiles[0])
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		slots, err := ReadStateSlots(dir, 64)
		if err != nil || slots[0].Err != nil || !slots[0].Present {
			return
		}
		if err := WriteStateSlot(dir, 0, slots[0].Saved); err != nil {
			t.Fatal(err)
		}
		again, _ := os.ReadFile(path)
		if string(again) != string(raw) {
			t.Fatalf("accepted %q, wrote back %q", raw, again)
		}
	})
}

// FuzzReadJSON: no content of the JSON files panics their readers.
func FuzzReadJSON(f *testing.F) {
	for _, name := range []string{IdentityFile, RunRecordFile} {
		raw, _ := os.ReadFile(filepath.Join(golden, name))
		f.Add(raw)
	}
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":{"a":1},"id":"x"}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, name := range []string{IdentityFile, RunRecordFile} {
			if err := os.WriteFile(filepath.Join(dir, name), raw, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		_, _, _ = ReadIdentity(dir)
		_, _, _ = ReadRunRecord(dir)
	})
}
