package actorhost

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStateFileRoundTrip(t *testing.T) {
	tests := map[string]savedState{
		"some":  {hasState: true, state: []byte("hello")},
		"empty": {hasState: true, state: []byte{}},
		"none":  {hasState: false},
	}
	for name, s := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := writeState(dir, s); err != nil {
				t.Fatal(err)
			}
			got, ok, err := readState(dir, 1024)
			if err != nil || !ok {
				t.Fatalf("readState = %v, %v", ok, err)
			}
			if got.hasState != s.hasState || string(got.state) != string(s.state) {
				t.Fatalf("got %+v, want %+v", got, s)
			}
		})
	}
}

func TestStateFileDamage(t *testing.T) {
	dir := t.TempDir()
	if err := writeState(dir, savedState{hasState: true, state: []byte("0123456789")}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, StateFileName)
	good, _ := os.ReadFile(path)
	tests := map[string]struct {
		raw     []byte
		max     int
		wantErr string
	}{
		"flipped state byte": {raw: func() []byte { b := append([]byte{}, good...); b[len(b)-1] ^= 1; return b }(), max: 1024, wantErr: "digest mismatch"},
		"truncated":          {raw: good[:len(good)-3], max: 1024, wantErr: "digest mismatch"},
		"bad magic":          {raw: append([]byte("XXXXXXXX"), good[8:]...), max: 1024, wantErr: "not a Troupe state file"},
		"bad flag":           {raw: func() []byte { b := append([]byte{}, good...); b[8] = 7; return b }(), max: 1024, wantErr: "bad flag"},
		"header only":        {raw: good[:5], max: 1024, wantErr: "not a Troupe state file"},
		"over the limit":     {raw: good, max: 4, wantErr: "larger than the 4 bytes"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(path, tc.raw, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, _, err := readState(dir, tc.max); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("readState = %v, want %q", err, tc.wantErr)
			}
		})
	}
	if _, ok, err := readState(t.TempDir(), 10); ok || err != nil {
		t.Fatalf("empty dir: %v, %v", ok, err)
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
