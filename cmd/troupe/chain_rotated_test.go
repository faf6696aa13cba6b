package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/chain"
)

// rotatedDir writes an actor directory whose chain was rotated twice, as
// a host with an archive's local tail leaves it.
func rotatedDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "actor")
	c, _, err := chain.Open(actordir.ChainPath(dir), chain.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		for range 3 {
			if _, err := c.Append(chain.KindTick, "tick", []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
		}
		_, l := c.Head()
		if _, err := c.Rotate(actordir.RotatedChainPath(dir, l), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Append(chain.KindTick, "tick", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// `troupe chain verify DIR` checks the rotated files beside chain.log and
// their links; a file that does not continue the one before is damage.
func TestChainVerifyRotatedFiles(t *testing.T) {
	for name, tc := range map[string]struct {
		damage   func(t *testing.T, dir string)
		wantCode int
		want     string
	}{
		"intact": {damage: func(*testing.T, string) {}, want: "2 rotated chain files before it, events 0 to 6, intact and linked"},
		"a rotated file replaced by another chain": {damage: func(t *testing.T, dir string) {
			other := rotatedDir(t)
			raw, err := os.ReadFile(actordir.RotatedChainPath(other, 3))
			if err != nil {
				t.Fatal(err)
			}
			// Same seqs, other hashes (other timestamps).
			if err := os.WriteFile(actordir.RotatedChainPath(dir, 3), raw, 0o600); err != nil {
				t.Fatal(err)
			}
		}, wantCode: exitBroken, want: "does not continue"},
		"a flipped byte in a rotated file": {damage: func(t *testing.T, dir string) {
			path := actordir.RotatedChainPath(dir, 7)
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			raw[len(raw)-3] ^= 0xff
			if err := os.WriteFile(path, raw, 0o600); err != nil {
				t.Fatal(err)
			}
		}, wantCode: exitBroken, want: "00000000000000000007"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := rotatedDir(t)
			tc.damage(t, dir)
			out, errOut, code := runCLI(t, "chain", "verify", dir)
			if code != tc.wantCode || !strings.Contains(out+errOut, tc.want) {
				t.Fatalf("exit %d, want %d and %q:\n%s%s", code, tc.wantCode, tc.want, out, errOut)
			}
		})
	}
}
