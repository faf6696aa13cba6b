package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/internal/chain"
)

// hostServer serves the chain in dir the way a host's chain endpoint does,
// after passing each line through tamper.
func hostServer(t *testing.T, dir string, tamper func(n int, line []byte) []byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/actors/default/hello/chain" {
			http.Error(w, "no chain of actor "+r.URL.Path+" on this host", http.StatusNotFound)
			return
		}
		n := 0
		_ = chain.ReadFile(filepath.Join(dir, chain.FileName), func(e chain.Event) error {
			line := append(chain.AppendJSON(nil, &e), '\n')
			if tamper != nil {
				line = tamper(n, line)
			}
			n++
			_, err := w.Write(line)
			return err
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestChainShowFromHost(t *testing.T) {
	dir, head := actorDir(t)
	srv := hostServer(t, dir, nil)
	// The same output as reading the file: JSON lines and the table.
	for _, flags := range [][]string{{"--json"}, nil} {
		local, _, code := runCLI(t, append(append([]string{"chain", "show"}, flags...), dir)...)
		if code != 0 {
			t.Fatalf("local show: exit %d", code)
		}
		remote, stderr, code := runCLI(t, append(append([]string{"chain", "show", "--from-host", srv.URL}, flags...), "default/hello")...)
		if code != 0 {
			t.Fatalf("remote show %v: exit %d: %s", flags, code, stderr)
		}
		if remote != local {
			t.Fatalf("remote show %v differs from the file's:\n%s\nvs\n%s", flags, remote, local)
		}
	}
	// A bare host:port works too.
	out, stderr, code := runCLI(t, "chain", "show", "--json", "--from-host", strings.TrimPrefix(srv.URL, "http://"), "default/hello")
	if code != 0 || !strings.Contains(out, head.String()) {
		t.Fatalf("host:port: exit %d, %s", code, stderr)
	}
}

func TestChainShowFromHostRejects(t *testing.T) {
	dir, _ := actorDir(t)
	flip := func(target int) func(int, []byte) []byte {
		return func(n int, line []byte) []byte {
			if n == target {
				line = bytes.Replace(line, []byte(`"DB_PASSWORD"`), []byte(`"DB_PASSWORX"`), 1)
			}
			return line
		}
	}
	drop := func(n int, line []byte) []byte {
		if n == 1 {
			return nil
		}
		return line
	}
	hostError := func(n int, line []byte) []byte {
		if n == 2 {
			return []byte(`{"error":"reading chain: event 2: bad hash"}` + "\n")
		}
		return line
	}
	tests := map[string]struct {
		srv  *httptest.Server
		ref  string
		code int
		want string
	}{
		"tampered data":   {srv: hostServer(t, dir, flip(1)), ref: "default/hello", code: exitBroken, want: "hashes to"},
		"dropped event":   {srv: hostServer(t, dir, drop), ref: "default/hello", code: exitBroken, want: "does not follow"},
		"damaged on host": {srv: hostServer(t, dir, hostError), ref: "default/hello", code: exitBroken, want: "the writer reports: reading chain"},
		"unknown actor":   {srv: hostServer(t, dir, nil), ref: "default/nobody", code: exitUnreadable, want: "404"},
		"not ns/name":     {srv: hostServer(t, dir, nil), ref: "hello", code: exitUnreadable, want: "NAMESPACE/NAME"},
		"not a chain": {srv: hostServer(t, dir, func(int, []byte) []byte { return []byte("<html>\n") }),
			ref: "default/hello", code: exitBroken, want: "not a chain event"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, stderr, code := runCLI(t, "chain", "show", "--from-host", tc.srv.URL, tc.ref)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, %q; want exit %d containing %q", code, stderr, tc.code, tc.want)
			}
		})
	}
}
