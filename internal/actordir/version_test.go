package actordir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Readers of each file, for tables of cases.
func readIdentityErr(dir string) error  { _, _, err := ReadIdentity(dir); return err }
func readRunRecordErr(dir string) error { _, _, err := ReadRunRecord(dir); return err }
func readStateErr(dir string) error     { _, _, err := ReadState(dir, 1024); return err }
func readSlotsErr(dir string) error {
	slots, err := ReadStateSlots(dir, 1024)
	if err != nil {
		return err
	}
	for _, s := range slots {
		if s.Err != nil {
			return s.Err
		}
	}
	return nil
}

// TestUnknownVersionsAreRefused: a file of a version this build does not
// know is an error that names the file, the version found and the ones it
// reads, never read as if it were version 1.
func TestUnknownVersionsAreRefused(t *testing.T) {
	tests := map[string]struct {
		file    string
		content string
		read    func(dir string) error
		found   string
		known   int // the version the reader knows; 1 when zero
	}{
		"identity v2":          {file: IdentityFile, content: `{"version":2,"id":"x"}`, read: readIdentityErr, found: "2"},
		"identity v0":          {file: IdentityFile, content: `{"version":0,"id":"x"}`, read: readIdentityErr, found: "0"},
		"identity string":      {file: IdentityFile, content: `{"version":"1","id":"x"}`, read: readIdentityErr, found: `"1"`},
		"identity null":        {file: IdentityFile, content: `{"version":null,"id":"x"}`, read: readIdentityErr, found: "null"},
		"run record v3":        {file: RunRecordFile, content: `{"version":3,"epoch":1}`, read: readRunRecordErr, found: "3"},
		"run record float":     {file: RunRecordFile, content: `{"version":1.5,"epoch":1}`, read: readRunRecordErr, found: "1.5"},
		"state v2":             {file: StateFile, content: "TRSTATE2" + strings.Repeat("\x00", 40), read: readStateErr, found: "2"},
		"state non-digit byte": {file: StateFile, content: "TRSTATE\xff" + strings.Repeat("\x00", 40), read: readStateErr, found: "byte 0xff"},
		"slot v3":              {file: StateSlotFiles[0], content: "TRSTATE3" + strings.Repeat("\x00", 60), read: readSlotsErr, found: "3", known: 2},
		"slot v1":              {file: StateSlotFiles[1], content: "TRSTATE1" + strings.Repeat("\x00", 60), read: readSlotsErr, found: "1", known: 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tc.file)
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			err := tc.read(dir)
			var ve *VersionError
			if !errors.As(err, &ve) {
				t.Fatalf("read = %v, want a *VersionError", err)
			}
			known := max(tc.known, 1)
			if ve.Path != path || ve.Found != tc.found || len(ve.Known) != 1 || ve.Known[0] != known {
				t.Fatalf("VersionError %+v", ve)
			}
			for _, want := range []string{path, "format version " + tc.found, fmt.Sprintf("reads version %d", known)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%q does not say %q", err, want)
				}
			}
		})
	}
}

func TestDamageIsAnError(t *testing.T) {
	dir := t.TempDir()
	if err := WriteLegacyState(dir, State{HasState: true, Data: []byte("0123456789")}); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(filepath.Join(dir, StateFile))
	if err := WriteStateSlot(dir, 0, SavedState{State: State{HasState: true, Data: []byte("0123456789")}, Seq: 7, Durable: 6}); err != nil {
		t.Fatal(err)
	}
	slot, _ := os.ReadFile(filepath.Join(dir, StateSlotFiles[0]))
	flipSlot := func(i int) []byte { b := append([]byte{}, slot...); b[i] ^= 1; return b }
	flip := func(i int) []byte { b := append([]byte{}, good...); b[i] ^= 1; return b }
	tests := map[string]struct {
		file    string
		raw     []byte
		read    func(dir string) error
		wantErr string
	}{
		"state byte flipped":    {file: StateFile, raw: flip(len(good) - 1), read: readStateErr, wantErr: "digest mismatch"},
		"state truncated":       {file: StateFile, raw: good[:len(good)-3], read: readStateErr, wantErr: "digest mismatch"},
		"state header cut":      {file: StateFile, raw: good[:20], read: readStateErr, wantErr: "shorter than its header"},
		"state bad magic":       {file: StateFile, raw: append([]byte("XXXXXXXX"), good[8:]...), read: readStateErr, wantErr: "not a Troupe state file"},
		"state magic only":      {file: StateFile, raw: good[:5], read: readStateErr, wantErr: "not a Troupe state file"},
		"state bad flag":        {file: StateFile, raw: func() []byte { b := append([]byte{}, good...); b[8] = 7; return b }(), read: readStateErr, wantErr: "bad flag"},
		"state over the limit":  {file: StateFile, raw: good, read: func(dir string) error { _, _, err := ReadState(dir, 4); return err }, wantErr: "larger than the 4 bytes"},
		"slot byte flipped":     {file: StateSlotFiles[0], raw: flipSlot(len(slot) - 1), read: readSlotsErr, wantErr: "is corrupt: digest mismatch"},
		"slot seq flipped":      {file: StateSlotFiles[0], raw: flipSlot(12), read: readSlotsErr, wantErr: "is corrupt: digest mismatch"},
		"slot torn":             {file: StateSlotFiles[0], raw: slot[:30], read: readSlotsErr, wantErr: "is corrupt: 30 bytes, shorter than its header"},
		"slot zeros":            {file: StateSlotFiles[0], raw: make([]byte, 80), read: readSlotsErr, wantErr: "is corrupt: not a Troupe state file"},
		"slot over the limit":   {file: StateSlotFiles[0], raw: slot, read: func(dir string) error { _, err := ReadStateSlots(dir, 4); return err }, wantErr: "larger than the 4 bytes"},
		"identity not json":     {file: IdentityFile, raw: []byte("{"), read: readIdentityErr, wantErr: "is corrupt"},
		"identity without id":   {file: IdentityFile, raw: []byte(`{"name":"x"}`), read: readIdentityErr, wantErr: "names no id"},
		"identity huge":         {file: IdentityFile, raw: []byte(`{"id":"` + strings.Repeat("x", maxJSONFile) + `"}`), read: readIdentityErr, wantErr: "larger than"},
		"run record not json":   {file: RunRecordFile, raw: []byte("epoch=1"), read: readRunRecordErr, wantErr: "is corrupt"},
		"run record wrong type": {file: RunRecordFile, raw: []byte(`{"epoch":"one"}`), read: readRunRecordErr, wantErr: "is corrupt"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := t.TempDir()
			if err := os.WriteFile(filepath.Join(d, tc.file), tc.raw, 0o600); err != nil {
				t.Fatal(err)
			}
			err := tc.read(d)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), d) {
				t.Fatalf("read = %v, want an error naming the file and saying %q", err, tc.wantErr)
			}
		})
	}
}
