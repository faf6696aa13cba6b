package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// completions runs cobra's hidden __complete command as a shell does and
// returns the candidates (the last line is the directive).
func completions(t *testing.T, args ...string) []string {
	t.Helper()
	stdout, stderr, code := runCLI(t, append([]string{"__complete"}, args...)...)
	if code != 0 {
		t.Fatalf("__complete %q: exit %d: %s", args, code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], ":") {
		t.Fatalf("__complete %q: no directive in %q", args, stdout)
	}
	return lines[:len(lines)-1]
}

// TestCompletion: NAME completes from the cluster's Actors in cluster mode
// (-n's namespace, through the API server with the kubeconfig's
// credentials), -n from its namespaces, and from the troupe run's actors
// in local mode; DATA is not an actor.
func TestCompletion(t *testing.T) {
	isolate(t)
	var mu sync.Mutex
	var paths []string
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		items := map[string][]string{
			"/apis/theater.troupe.dev/v1alpha1/namespaces/shop/actors": {"orders", "counter", "cart"},
			"/api/v1/namespaces": {"shop", "default", "kube-system"},
		}[r.URL.Path]
		var list struct {
			Items []map[string]map[string]string `json:"items"`
		}
		for _, n := range items {
			list.Items = append(list.Items, map[string]map[string]string{"metadata": {"name": n}})
		}
		_ = json.NewEncoder(w).Encode(list)
	}))
	defer api.Close()
	kc := writeKubeconfig(t, api.URL, api.Certificate().Raw)

	tests := map[string]struct {
		args []string
		want []string
	}{
		"actors of -n":      {[]string{"request", "--kubeconfig", kc, "-n", "shop", "c"}, []string{"counter", "cart"}},
		"all actors of -n":  {[]string{"send", "--kubeconfig", kc, "-n", "shop", ""}, []string{"orders", "counter", "cart"}},
		"namespaces":        {[]string{"request", "--kubeconfig", kc, "-n", "s"}, []string{"shop"}},
		"DATA":              {[]string{"request", "--kubeconfig", kc, "-n", "shop", "orders", ""}, nil},
		"context namespace": {[]string{"request", "--kubeconfig", kc, ""}, nil}, // team-a has none
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := completions(t, tc.args...); !slices.Equal(got, tc.want) {
				t.Errorf("completions %q, want %q", got, tc.want)
			}
		})
	}
	mu.Lock()
	if !slices.Contains(paths, "/apis/theater.troupe.dev/v1alpha1/namespaces/team-a/actors") {
		t.Errorf("without -n, the context's namespace was not asked: %q", paths)
	}
	mu.Unlock()

	// Local mode: the actors of the troupe run on the socket.
	sock := filepath.Join(t.TempDir(), "run.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/info" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"actors": []actorInfo{{Name: "hello"}, {Name: "counter"}}})
	})}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	if got := completions(t, "request", "--socket", sock, "h"); !slices.Equal(got, []string{"hello"}) {
		t.Errorf("local completions %q, want [hello]", got)
	}
	// Nothing listening: no candidates, no error in the shell.
	if got := completions(t, "send", "--socket", filepath.Join(t.TempDir(), "none.sock"), ""); len(got) != 0 {
		t.Errorf("completions without a troupe run: %q", got)
	}
}
