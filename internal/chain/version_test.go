package chain

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Magic is version 1's header in the versioned form every reader parses.
func TestMagicIsTheVersionOneHeader(t *testing.T) {
	if want := HeaderPrefix + strconv.Itoa(FormatVersion) + "\n"; Magic != want {
		t.Fatalf("Magic %q; the header of format version %d is %q", Magic, FormatVersion, want)
	}
	if !slices.Contains(KnownVersions(), FormatVersion) {
		t.Fatalf("KnownVersions() = %v lacks FormatVersion %d", KnownVersions(), FormatVersion)
	}
}

func TestParseHeader(t *testing.T) {
	tests := map[string]struct {
		in          string
		kind        headerKind
		size, vers  int
		description string
	}{
		"version 1":                    {in: Magic, kind: headerV1, size: len(Magic), vers: 1},
		"version 1 and a record":       {in: Magic + "\x00\x00\x00v", kind: headerV1, size: len(Magic), vers: 1},
		"empty file: torn creation":    {in: "", kind: headerTorn},
		"torn version 1 header":        {in: "troupe-chain-v", kind: headerTorn},
		"torn before the newline":      {in: "troupe-chain-v1", kind: headerTorn},
		"version 2":                    {in: "troupe-chain-v2\n\x00\x00", kind: headerUnknown, size: 16, vers: 2},
		"version 10":                   {in: "troupe-chain-v10\n", kind: headerUnknown, size: 17, vers: 10},
		"nine digits":                  {in: "troupe-chain-v999999999\n", kind: headerUnknown, size: 24, vers: 999999999},
		"ten digits: no header":        {in: "troupe-chain-v1000000000\n", kind: headerForeign},
		"leading zero: no header":      {in: "troupe-chain-v01\n", kind: headerForeign},
		"version 0: no header":         {in: "troupe-chain-v0\n", kind: headerForeign},
		"a sign: no header":            {in: "troupe-chain-v+2\n", kind: headerForeign},
		"no digits: no header":         {in: "troupe-chain-v\n", kind: headerForeign},
		"version 2 without a newline":  {in: "troupe-chain-v2", kind: headerForeign},
		"another magic":                {in: "theater-chain-v1\n", kind: headerForeign},
		"a Theater export":             {in: `[{"hash":[1,2]`, kind: headerForeign},
		"binary garbage":               {in: "\x00asm\x01\x00\x00\x00", kind: headerForeign},
		"version 1 header, wrong case": {in: "Troupe-chain-v1\n", kind: headerForeign},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := []byte(tc.in)
			kind, size, vers := parseHeader(in[:min(len(in), maxHeaderSize)])
			if kind != tc.kind || size != tc.size || vers != tc.vers {
				t.Fatalf("parseHeader(%q) = %d, %d, %d; want %d, %d, %d", tc.in, kind, size, vers, tc.kind, tc.size, tc.vers)
			}
		})
	}
}

// goldenWithHeader is testdata/golden.chain with its header replaced.
func goldenWithHeader(t *testing.T, header string) []byte {
	t.Helper()
	raw, err := os.ReadFile("testdata/golden.chain")
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(header), raw[len(Magic):]...)
}

// TestUnknownVersionRefused: every reader refuses a chain file of a newer
// format version with a message naming the file, its version and the
// versions this build reads, and the writer leaves it untouched, even a
// torn tail, which in a version 1 file it would cut.
func TestUnknownVersionRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	content := append(goldenWithHeader(t, "troupe-chain-v2\n"), 0, 0, 0)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(what string, err error, wantPath string) {
		t.Helper()
		var ve *VersionError
		if !errors.As(err, &ve) || ve.Version != 2 || ve.Path != wantPath {
			t.Fatalf("%s: %v; want a *VersionError for version 2 of %q", what, err, wantPath)
		}
		if !errors.Is(err, ErrUnknownVersion) || errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: %v is not ErrUnknownVersion, or is ErrCorrupt", what, err)
		}
		for _, want := range []string{wantPath, "format version 2", "reads version 1"} {
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("%s: %q does not say %q", what, err, want)
			}
		}
	}

	called := false
	err := ReadFile(path, func(Event) error { called = true; return nil })
	check("ReadFile", err, path)
	if called {
		t.Fatal("ReadFile passed on an event of an unknown version")
	}
	rep, err := VerifyFile(path)
	check("VerifyFile", err, path)
	if rep.OK() {
		t.Fatalf("VerifyFile's report says intact: %+v", rep)
	}
	rep, err = Verify(bytes.NewReader(content))
	check("Verify", err, "")
	if rep.OK() {
		t.Fatalf("Verify's report says intact: %+v", rep)
	}
	c, _, err := Open(path, Options{})
	if c != nil {
		c.Close()
	}
	check("Open", err, path)
	if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
		t.Fatal("Open changed a chain file of an unknown version")
	}
	// The file stays unlocked: Open gave it up.
	if err := lockExclusive(mustOpen(t, path)); err != nil {
		t.Fatalf("Open left the file locked: %v", err)
	}
}

func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestVersionOneFilesStillRead: testdata/golden.chain, written with the
// header of before the version was explicit, reads, verifies and opens for
// appending, and a file of another magic is still no chain file.
func TestVersionOneFilesStillRead(t *testing.T) {
	raw, err := os.ReadFile("testdata/golden.chain")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("troupe-chain-v1\n")) {
		t.Fatalf("golden.chain starts with %q", raw[:16])
	}
	n := 0
	if err := ReadFile("testdata/golden.chain", func(Event) error { n++; return nil }); err != nil || n != 5 {
		t.Fatalf("ReadFile(golden.chain): %d events, %v", n, err)
	}
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	c, rec, err := Open(path, Options{})
	if err != nil || rec.Events != 5 || rec.DroppedBytes != 0 {
		t.Fatalf("Open(golden.chain): %+v, %v", rec, err)
	}
	if _, err := c.Append(KindLog, "log", []byte(`{"line":"after"}`)); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := VerifyFile(path); err != nil || !rep.OK() || rep.Events != 6 {
		t.Fatalf("golden.chain plus one event: %+v, %v", rep, err)
	}

	foreign := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(foreign, goldenWithHeader(t, "theater-chain-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := VerifyFile(foreign)
	if err != nil || rep.OK() || !strings.Contains(rep.Reason, "not a troupe chain file") {
		t.Fatalf("a foreign file: %+v, %v; want damage at the header", rep, err)
	}
}

// docs/chain-format.md states the header's rules with this code's numbers.
func TestDocStatesTheHeader(t *testing.T) {
	doc, err := os.ReadFile("../../docs/chain-format.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf("first %d bytes", maxHeaderSize),
		fmt.Sprintf("at most %s digits", []string{"", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}[maxVersionDigits]),
		"`" + HeaderPrefix + "`",
		fmt.Sprintf("Troupe reads version %d only", FormatVersion),
	} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("docs/chain-format.md does not say %q", want)
		}
	}
}
