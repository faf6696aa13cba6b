package actorhost

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/chain"
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
	if _, ok, err := readState(t.TempDir(), 10); ok || err != nil {
		t.Fatalf("empty dir: %v, %v", ok, err)
	}
}

// copyDir copies the flat directory src into a new temporary one.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.OpenFile(filepath.Join(dst, e.Name()), os.O_CREATE|os.O_WRONLY, 0o600)
		if err == nil {
			_, err = io.Copy(out, in)
			out.Close()
		}
		in.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestResumesADirectoryOfV010: an actor directory that Troupe v0.1.0 wrote
// (identity and state without versions) starts as the same actor, from its
// saved state, and its chain goes on.
func TestResumesADirectoryOfV010(t *testing.T) {
	e, _ := newTestEngine(t)
	dir := copyDir(t, "../actordir/testdata/v0.1.0")
	before, err := chain.VerifyFile(actordir.ChainPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	a := start(t, e, ActorConfig{Name: "counter", Namespace: "default", Component: compile(t, e, "counter"), Dir: dir})
	if a.ID() != "5f0b7a52-6c1e-4f7e-9a3b-2f1d6a9e8c41" {
		t.Fatalf("resumed as %s", a.ID())
	}
	if got := string(a.State()); got != "state of v0.1.0:xx" {
		t.Fatalf("state %q, want the saved one with one more x", got)
	}
	if err := a.Stop(context.Background(), "test over"); err != nil {
		t.Fatal(err)
	}
	after, err := chain.VerifyFile(actordir.ChainPath(dir))
	if err != nil || after.Length <= before.Length {
		t.Fatalf("the chain did not go on: %d events before, %+v, %v after", before.Length, after, err)
	}
	// What this run saved carries the current versions.
	raw, _ := os.ReadFile(filepath.Join(dir, actordir.StateFile))
	if !strings.HasPrefix(string(raw), "TRSTATE1") {
		t.Errorf("state saved as %q", raw[:8])
	}
}

// TestUnknownVersionRefusesToStart: an identity or state of a newer format
// stops the start with an error naming the file, and is left as it was.
func TestUnknownVersionRefusesToStart(t *testing.T) {
	e, _ := newTestEngine(t)
	c := compile(t, e, "counter")
	tests := map[string]struct {
		file    string
		content string
	}{
		"identity": {file: actordir.IdentityFile, content: `{"version":2,"id":"5f0b7a52-6c1e-4f7e-9a3b-2f1d6a9e8c41"}`},
		"state":    {file: actordir.StateFile, content: "TRSTATE2 a state of the future"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := copyDir(t, "../actordir/testdata/v0.1.0")
			path := filepath.Join(dir, tc.file)
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			a, err := e.Start(context.Background(), ActorConfig{Name: "counter", Component: c, Dir: dir})
			var ve *actordir.VersionError
			if a != nil || !errors.As(err, &ve) || ve.Path != path {
				t.Fatalf("Start = %v, %v; want a *VersionError for %s", a, err, path)
			}
			if raw, _ := os.ReadFile(path); string(raw) != tc.content {
				t.Fatalf("the file was rewritten: %q", raw)
			}
		})
	}
}
