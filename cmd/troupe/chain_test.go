package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/chain"
)

// fixtureEvent is one event actorDir writes.
type fixtureEvent struct {
	kind chain.Kind
	op   string
	data []byte
}

// fixtureEvents returns actorDir's events. Each JSON object is built in a
// Fields of its own: Fields.Data is valid only until its Fields changes,
// and one Fields reused for every object turned the first event's data
// into the tail of the second's.
func fixtureEvents() []fixtureEvent {
	object := func(build func(f *chain.Fields) *chain.Fields) []byte {
		var f chain.Fields
		return build(&f).Data()
	}
	return []fixtureEvent{
		{chain.KindActorStart, "start", object(func(f *chain.Fields) *chain.Fields { return f.Str("actor", "hello") })},
		{chain.KindRuntimeOperation, "get-env", object(func(f *chain.Fields) *chain.Fields {
			return f.Str("name", "DB_PASSWORD").Secret("value")
		})},
		{chain.KindLog, "log\x1b[31m", []byte("red \x1b[2J alert")},
		{chain.KindCustom, "record-event", []byte{0, 1, 2, 0xff}},
	}
}

// actorDir writes fixtureEvents into an actor directory and returns it.
func actorDir(t *testing.T) (dir string, head chain.Hash) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "actor")
	tick := int64(0)
	c, _, err := chain.Open(filepath.Join(dir, chain.FileName), chain.Options{Now: func() time.Time {
		tick++
		return time.Unix(1735787045, tick*1e6)
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range fixtureEvents() {
		if head, err = c.Append(e.kind, e.op, e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, head
}

func TestFixtureEventData(t *testing.T) {
	want := []string{`{"actor":"hello"}`, `{"name":"DB_PASSWORD","value":{"redacted":true}}`, "red \x1b[2J alert", "\x00\x01\x02\xff"}
	evs := fixtureEvents()
	for i, e := range evs {
		if string(e.data) != want[i] {
			t.Errorf("event %d data %q, want %q", i, e.data, want[i])
		}
	}
	dir, _ := actorDir(t)
	i := 0
	if err := chain.ReadFile(filepath.Join(dir, chain.FileName), func(e chain.Event) error {
		if i < len(evs) && (e.Kind != evs[i].kind || e.Op != evs[i].op || !bytes.Equal(e.Data, evs[i].data)) {
			t.Errorf("event %d on file: %s %q %q, want %s %q %q", i, e.Kind, e.Op, e.Data, evs[i].kind, evs[i].op, evs[i].data)
		}
		i++
		return nil
	}); err != nil || i != len(evs) {
		t.Fatalf("read %d events: %v", i, err)
	}
}

func TestChainVerifyIntact(t *testing.T) {
	dir, head := actorDir(t)
	for _, path := range []string{dir, filepath.Join(dir, chain.FileName)} {
		for _, format := range []string{"auto", "troupe"} {
			out, errOut, code := runCLI(t, "chain", "verify", "--format", format, path)
			if code != 0 || !strings.Contains(out, "intact: 4 events") || !strings.Contains(out, head.String()) {
				t.Fatalf("verify %s --format %s: code %d\n%s%s", path, format, code, out, errOut)
			}
		}
	}
}

// Done-when: verify rejects any single flipped byte of a chain file, with
// the first bad event's index and the reason.
func TestChainVerifyRejectsEveryFlippedByte(t *testing.T) {
	dir, _ := actorDir(t)
	raw, err := os.ReadFile(filepath.Join(dir, chain.FileName))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), chain.FileName)
	for i := range raw {
		b := append([]byte(nil), raw...)
		b[i] ^= 0xff
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := runCLI(t, "chain", "verify", path)
		if code != exitBroken {
			t.Fatalf("byte %d flipped: exit %d, want %d\n%s%s", i, code, exitBroken, out, errOut)
		}
		if !strings.Contains(errOut, ": event ") || !strings.Contains(out, "damaged") {
			t.Fatalf("byte %d flipped: no index or reason:\n%s%s", i, out, errOut)
		}
	}
}

func TestChainVerifyTheater(t *testing.T) {
	const fixtures = "../../internal/chain/theater/testdata/"
	tests := map[string]struct {
		file, format string
		code         int
		want         string
	}{
		"valid, detected":     {"valid.json", "auto", 0, "intact (theater-json): 6 events"},
		"valid, named":        {"valid-compact.json", "theater-json", 0, "intact (theater-json): 6 events"},
		"tampered hash":       {"tampered-hash.json", "", exitBroken, "event 3: hash mismatch"},
		"broken link":         {"broken-link.json", "", exitBroken, "event 4: broken link"},
		"theater as troupe":   {"valid.json", "troupe", exitUnreadable, `is not a state chain: --format troupe: it starts with "[\n`},
		"troupe as theater":   {"", "theater-json", exitUnreadable, "is not a state chain: --format theater-json: it is not a JSON array"},
		"unknown format flag": {"valid.json", "yaml", exitUnreadable, "unknown --format"},
	}
	dir, _ := actorDir(t)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := dir
			if tc.file != "" {
				path = fixtures + tc.file
			}
			args := []string{"chain", "verify", path}
			if tc.format != "" {
				args = append(args, "--format", tc.format)
			}
			out, errOut, code := runCLI(t, args...)
			if code != tc.code || !strings.Contains(out+errOut, tc.want) {
				t.Fatalf("exit %d (want %d), want %q in:\n%s%s", code, tc.code, tc.want, out, errOut)
			}
		})
	}
}

func TestChainVerifyUnreadable(t *testing.T) {
	dir := t.TempDir() // a directory without chain.log
	for _, path := range []string{filepath.Join(dir, "missing"), dir} {
		if _, errOut, code := runCLI(t, "chain", "verify", path); code != exitUnreadable {
			t.Fatalf("verify %s: exit %d, want %d: %s", path, code, exitUnreadable, errOut)
		}
	}
}

// TestChainNotAChain: a file or directory that is not a chain is a usage
// error (exit 2) that says so, for verify and show alike; exit 1 is kept
// for damage.
func TestChainNotAChain(t *testing.T) {
	tests := map[string]struct {
		content *string // nil: a directory without chain.log
		want    string
	}{
		"text file":       {content: ptr("hello, world\n"), want: `is not a state chain: it starts with "hello, world\n", neither a Troupe chain's header`},
		"empty file":      {content: ptr(""), want: "is not a state chain: it is empty"},
		"binary file":     {content: ptr("\x00asm\x01\x00\x00\x00"), want: "is not a state chain: it starts with"},
		"JSON object":     {content: ptr(`{"events": []}`), want: "is not a state chain"},
		"plain directory": {want: "is not an actor directory: it holds no chain.log"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := t.TempDir()
			if tc.content != nil {
				path = filepath.Join(path, "file")
				mustWrite(t, path, []byte(*tc.content))
			}
			for _, cmd := range []string{"verify", "show"} {
				stdout, stderr, code := runCLI(t, "chain", cmd, path)
				if code != exitUnreadable || !strings.Contains(stderr, tc.want) || strings.Contains(stdout+stderr, "damaged") {
					t.Errorf("chain %s: exit %d, stdout %q, stderr %q; want exit %d with %q", cmd, code, stdout, stderr, exitUnreadable, tc.want)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestChainTornOrDamagedHeaderIsDamage: a file that starts like a chain
// but whose header is cut short or has a damaged byte is a damaged chain
// (exit 1), not "not a chain".
func TestChainTornOrDamagedHeaderIsDamage(t *testing.T) {
	dir, _ := actorDir(t)
	raw := mustRead(t, filepath.Join(dir, chain.FileName))
	torn := raw[:7]
	damaged := append([]byte(nil), raw...)
	damaged[3], damaged[9] = 'X', 'Y'
	for name, content := range map[string][]byte{"torn": torn, "two bytes damaged": damaged} {
		path := filepath.Join(t.TempDir(), chain.FileName)
		mustWrite(t, path, content)
		if out, errOut, code := runCLI(t, "chain", "verify", path); code != exitBroken {
			t.Errorf("%s header: exit %d, want %d\n%s%s", name, code, exitBroken, out, errOut)
		}
	}
}

func TestChainShowTable(t *testing.T) {
	dir, head := actorDir(t)
	out, errOut, code := runCLI(t, "chain", "show", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "SEQ") {
		t.Fatalf("want a header and 4 rows:\n%s", out)
	}
	for _, want := range []string{"ActorStart", `{"actor":"hello"}`, "get-env", `{"name":"DB_PASSWORD","value":{"redacted":true}}`, head.Short(), "<4 bytes: 000102ff>", "2025-01-02T03:04:05.001Z"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// Guest text reaches a terminal: no raw escape sequences.
	if strings.ContainsRune(out, 0x1b) {
		t.Fatalf("raw ESC in the table:\n%q", out)
	}
}

func TestChainShowJSON(t *testing.T) {
	dir, _ := actorDir(t)
	out, errOut, code := runCLI(t, "chain", "show", "--json", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	type line struct {
		Seq          uint64          `json:"seq"`
		Hash         string          `json:"hash"`
		Parent       string          `json:"parent"`
		Kind         string          `json:"kind"`
		Op           string          `json:"op"`
		Time         time.Time       `json:"time"`
		Data         json.RawMessage `json:"data"`
		DataEncoding string          `json:"data_encoding"`
	}
	var got []line
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var l line
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, l)
	}
	if len(got) != 4 {
		t.Fatalf("%d lines:\n%s", len(got), out)
	}
	// Every event re-hashes from its export alone, and carries the data
	// that was appended (re-hashing alone would accept any data).
	fixture := fixtureEvents()
	for i, l := range got {
		e := chain.Event{Seq: l.Seq, Kind: chain.Kind(l.Kind), Op: l.Op, Time: l.Time.UnixNano(), Data: l.Data}
		if l.DataEncoding == "base64" {
			var s string
			if err := json.Unmarshal(l.Data, &s); err != nil {
				t.Fatal(err)
			}
			var err error
			if e.Data, err = base64.StdEncoding.DecodeString(s); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(e.Data, fixture[i].data) || e.Kind != fixture[i].kind || e.Op != fixture[i].op {
			t.Errorf("line %d: %s %q %q, want %s %q %q", i, e.Kind, e.Op, e.Data, fixture[i].kind, fixture[i].op, fixture[i].data)
		}
		copy(e.Parent[:], mustHex(t, l.Parent))
		if h := chain.ComputeHash(&e); h.String() != l.Hash {
			t.Fatalf("line %d does not re-hash: %s vs %s", i, h, l.Hash)
		}
	}
	if got[1].DataEncoding != "" || string(got[1].Data) != `{"name":"DB_PASSWORD","value":{"redacted":true}}` {
		t.Fatalf("JSON data not embedded: %+v", got[1])
	}
	if got[3].DataEncoding != "base64" {
		t.Fatalf("binary data not marked base64: %+v", got[3])
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != chain.HashSize {
		t.Fatalf("hash %q: %v", s, err)
	}
	return b
}

func TestChainShowDamagedChain(t *testing.T) {
	dir, _ := actorDir(t)
	path := filepath.Join(dir, chain.FileName)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 1 // the last event's hash
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "chain", "show", path)
	if code != exitBroken || !strings.Contains(errOut, "event 3") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := strings.Count(out, "\n"); n != 4 { // header and the 3 good events
		t.Fatalf("printed %d lines before the damage:\n%s", n, out)
	}
}

func TestChainShowTheater(t *testing.T) {
	const path = "../../internal/chain/theater/testdata/valid.json"
	out, errOut, code := runCLI(t, "chain", "show", path)
	if code != 0 || !strings.Contains(out, "user_login") || !strings.Contains(out, `ctl\b\f\n`) {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runCLI(t, "chain", "show", "--json", path)
	if code != 0 || strings.Count(out, "\n") != 6 || !strings.Contains(out, `"parent":null`) {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !json.Valid([]byte(l)) {
			t.Fatalf("invalid JSON line %q", l)
		}
	}
	_, errOut, code = runCLI(t, "chain", "show", "../../internal/chain/theater/testdata/broken-link.json")
	if code != exitBroken || !strings.Contains(errOut, "event 4") {
		t.Fatalf("broken theater chain: exit %d: %s", code, errOut)
	}
}

// TestReadmeChainExamples runs the README's `troupe chain verify` examples
// that name a file of the repository: each must exist and verify.
func TestReadmeChainExamples(t *testing.T) {
	root := filepath.Join("..", "..")
	readme := string(mustRead(t, filepath.Join(root, "README.md")))
	n := 0
	for _, line := range strings.Split(readme, "\n") {
		args, ok := strings.CutPrefix(line, "bin/troupe chain verify ")
		if !ok {
			continue
		}
		args, _, _ = strings.Cut(args, "#")
		fields := strings.Fields(args)
		path := fields[len(fields)-1]
		if strings.HasPrefix(path, "~") || strings.HasPrefix(path, archiveScheme) {
			continue // an actor directory of the reader's own runs, or an archive (chain_archive_test.go)
		}
		n++
		fields[len(fields)-1] = filepath.Join(root, path)
		if out, errOut, code := runCLI(t, append([]string{"chain", "verify"}, fields...)...); code != 0 {
			t.Errorf("README: %s\nexit %d\n%s%s", line, code, out, errOut)
		}
	}
	if n == 0 {
		t.Fatal("no `bin/troupe chain verify FILE` example in README.md")
	}
}
