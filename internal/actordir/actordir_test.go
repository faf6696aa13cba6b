package actordir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/chain"
)

// golden is an actor's directory as Troupe v0.1.0 wrote it, before its
// formats carried versions: the engine ran testdata counter.wat in it
// (identity, state, chain) and the host recorded a run (host-run.json).
const golden = "testdata/v0.1.0"

func TestGoldenV010DirectoryStillLoads(t *testing.T) {
	id, ok, err := ReadIdentity(golden)
	if err != nil || !ok {
		t.Fatalf("ReadIdentity = %v, %v", ok, err)
	}
	if want := (Identity{ID: "5f0b7a52-6c1e-4f7e-9a3b-2f1d6a9e8c41", Name: "counter", Namespace: "default"}); id != want {
		t.Fatalf("identity %+v, want %+v", id, want)
	}
	st, ok, err := ReadState(golden, 1024)
	if err != nil || !ok {
		t.Fatalf("ReadState = %v, %v", ok, err)
	}
	if !st.HasState || string(st.Data) != "state of v0.1.0:x" {
		t.Fatalf("state %+v", st)
	}
	rec, ok, err := ReadRunRecord(golden)
	if err != nil || !ok {
		t.Fatalf("ReadRunRecord = %v, %v", ok, err)
	}
	if want := (RunRecord{Epoch: 3, Generation: 2, Phase: "Failed", Reason: "Trapped"}); rec != want {
		t.Fatalf("run record %+v, want %+v", rec, want)
	}
	rep, err := chain.VerifyFile(ChainPath(golden))
	if err != nil || !rep.OK() || rep.Events == 0 {
		t.Fatalf("the v0.1.0 chain: %+v, %v", rep, err)
	}
}

func TestWrittenFilesCarryTheirVersion(t *testing.T) {
	dir := t.TempDir()
	if err := WriteIdentity(dir, Identity{ID: "a", Name: "n"}); err != nil {
		t.Fatal(err)
	}
	if err := WriteRunRecord(filepath.Join(dir, "made"), RunRecord{Epoch: 1, Phase: "Failed"}); err != nil {
		t.Fatal(err)
	}
	if err := WriteState(dir, State{HasState: true, Data: []byte("s")}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{IdentityFile, filepath.Join("made", RunRecordFile)} {
		raw, _ := os.ReadFile(filepath.Join(dir, f))
		if !strings.Contains(string(raw), `"version": 1`) {
			t.Errorf("%s = %s, without its version", f, raw)
		}
	}
	raw, _ := os.ReadFile(filepath.Join(dir, StateFile))
	if !strings.HasPrefix(string(raw), "TRSTATE1") {
		t.Errorf("state starts with %q", raw[:8])
	}
}

func TestRoundTrips(t *testing.T) {
	dir := t.TempDir()
	id := Identity{ID: "id-1", Name: "name", Namespace: "ns"}
	if err := WriteIdentity(dir, id); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := ReadIdentity(dir); err != nil || !ok || got != id {
		t.Fatalf("identity %+v, %v, %v", got, ok, err)
	}
	rec := RunRecord{Epoch: 7, Generation: 3, Phase: "Succeeded", Reason: "Shutdown"}
	if err := WriteRunRecord(dir, rec); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := ReadRunRecord(dir); err != nil || !ok || got != rec {
		t.Fatalf("run record %+v, %v, %v", got, ok, err)
	}
	for name, s := range map[string]State{
		"some":  {HasState: true, Data: []byte("hello")},
		"empty": {HasState: true, Data: []byte{}},
		"none":  {},
	} {
		if err := WriteState(dir, s); err != nil {
			t.Fatal(err)
		}
		got, ok, err := ReadState(dir, 1024)
		if err != nil || !ok || got.HasState != s.HasState || string(got.Data) != string(s.Data) {
			t.Fatalf("%s: state %+v, %v, %v", name, got, ok, err)
		}
	}
	empty := t.TempDir()
	if _, ok, err := ReadIdentity(empty); ok || err != nil {
		t.Fatalf("no identity: %v, %v", ok, err)
	}
	if _, ok, err := ReadRunRecord(empty); ok || err != nil {
		t.Fatalf("no run record: %v, %v", ok, err)
	}
	if _, ok, err := ReadState(empty, 10); ok || err != nil {
		t.Fatalf("no state: %v, %v", ok, err)
	}
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
	}{
		"identity v2":          {file: IdentityFile, content: `{"version":2,"id":"x"}`, read: readIdentityErr, found: "2"},
		"identity v0":          {file: IdentityFile, content: `{"version":0,"id":"x"}`, read: readIdentityErr, found: "0"},
		"identity string":      {file: IdentityFile, content: `{"version":"1","id":"x"}`, read: readIdentityErr, found: `"1"`},
		"identity null":        {file: IdentityFile, content: `{"version":null,"id":"x"}`, read: readIdentityErr, found: "null"},
		"run record v3":        {file: RunRecordFile, content: `{"version":3,"epoch":1}`, read: readRunRecordErr, found: "3"},
		"run record float":     {file: RunRecordFile, content: `{"version":1.5,"epoch":1}`, read: readRunRecordErr, found: "1.5"},
		"state v2":             {file: StateFile, content: "TRSTATE2" + strings.Repeat("\x00", 40), read: readStateErr, found: "2"},
		"state non-digit byte": {file: StateFile, content: "TRSTATE\xff" + strings.Repeat("\x00", 40), read: readStateErr, found: "byte 0xff"},
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
			if ve.Path != path || ve.Found != tc.found || len(ve.Known) != 1 || ve.Known[0] != 1 {
				t.Fatalf("VersionError %+v", ve)
			}
			for _, want := range []string{path, "format version " + tc.found, "reads version 1"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%q does not say %q", err, want)
				}
			}
		})
	}
}

func readIdentityErr(dir string) error  { _, _, err := ReadIdentity(dir); return err }
func readRunRecordErr(dir string) error { _, _, err := ReadRunRecord(dir); return err }
func readStateErr(dir string) error     { _, _, err := ReadState(dir, 1024); return err }

func TestDamageIsAnError(t *testing.T) {
	dir := t.TempDir()
	if err := WriteState(dir, State{HasState: true, Data: []byte("0123456789")}); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(filepath.Join(dir, StateFile))
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

func TestWriteFileAtomicReplaces(t *testing.T) {
	dir := t.TempDir()
	for _, content := range []string{"first", "second"} {
		if err := writeFileAtomic(dir, "f", []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(filepath.Join(dir, "f"))
		if string(got) != content {
			t.Fatalf("content %q, want %q", got, content)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	if err := writeFileAtomic(filepath.Join(dir, "missing"), "f", nil); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
}

func TestLayout(t *testing.T) {
	root := t.TempDir()
	if got := Path(root, "ns", "name", "id"); got != filepath.Join(root, "ns", "name", "id") {
		t.Fatalf("Path = %s", got)
	}
	if Newest(root, "ns", "name") != "" {
		t.Fatal("Newest of nothing is not empty")
	}
	// Three actor ids of one Actor; the chain written last wins, a
	// directory without a chain never does.
	base := time.Now().Add(-time.Hour)
	for i, id := range []string{"old", "new", "middle"} {
		dir := Path(root, "ns", "name", id)
		if err := os.MkdirAll(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(ChainPath(dir), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		at := base.Add(time.Duration([]int{1, 3, 2}[i]) * time.Minute)
		if err := os.Chtimes(ChainPath(dir), at, at); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(Path(root, "ns", "name", "no-chain"), 0o750); err != nil {
		t.Fatal(err)
	}
	if got := Newest(root, "ns", "name"); got != "new" {
		t.Fatalf("Newest = %q, want new", got)
	}

	dir := Path(root, "ns", "name", "new")
	now := time.Unix(1700000000, 0)
	name, err := MoveChainAside(dir, now)
	if err != nil || name != "chain.log.1700000000.old" {
		t.Fatalf("MoveChainAside = %q, %v", name, err)
	}
	if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ChainPath(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the chain is still in place: %v", err)
	}
	if _, err := MoveChainAside(dir, now); err == nil {
		t.Fatal("moving a missing chain aside succeeded")
	}
}
