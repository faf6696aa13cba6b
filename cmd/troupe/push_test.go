package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/component"
	"github.com/troupe-dev/troupe/internal/component/componenttest"
	"github.com/troupe-dev/troupe/internal/testutil"
)

// dockerLogin writes a Docker config with a user for host and points
// DOCKER_CONFIG at it, as `docker login` would.
func dockerLogin(t *testing.T, host, user, pass string) {
	t.Helper()
	dir := t.TempDir()
	cfg := map[string]any{"auths": map[string]any{host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))}}}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
}

// TestPush: troupe push writes an artifact the host's fetcher takes, with
// the documented media types, names it by digest, tags it with the
// module's SHA-256 when no tag is given, and pushes the same module to the
// same digest every time; the registry's credentials come from the Docker
// config.
func TestPush(t *testing.T) {
	isolate(t)
	reg := componenttest.StartRegistry(t, "alice", "s3cret")
	dockerLogin(t, reg.Host, "alice", "s3cret")
	wasm := testutil.ExampleWasm(t, "hello")
	file := filepath.Join(t.TempDir(), "hello.wasm")
	if err := os.WriteFile(file, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	digestRef := regexp.MustCompile(`^` + regexp.QuoteMeta(reg.Host) + `/actors/hello@sha256:[0-9a-f]{64}\n$`)
	stdout, stderr, code := runCLI(t, "push", file, reg.Host+"/actors/hello:v1")
	if code != 0 || !digestRef.MatchString(stdout) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	ref := strings.TrimSpace(stdout)
	again, _, _ := runCLI(t, "push", file, reg.Host+"/actors/hello")
	if strings.TrimSpace(again) != ref {
		t.Errorf("the same module pushed again is %s, first %s", again, ref)
	}
	// Without a tag: the module's SHA-256, 12 digits.
	sum := strings.TrimPrefix(component.Digest(wasm), "sha256:")
	if _, err := remote.Head(parseRef(t, reg.Host+"/actors/hello:"+sum[:12]), reg.Auth()); err != nil {
		t.Errorf("no tag %s: %v", sum[:12], err)
	}

	img, err := remote.Image(parseRef(t, ref), reg.Auth())
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.MediaType != wasmConfigMediaType || len(m.Layers) != 1 || m.Layers[0].MediaType != wasmLayerMediaType {
		t.Errorf("manifest config %s, layers %+v: want %s and one %s layer", m.Config.MediaType, m.Layers, wasmConfigMediaType, wasmLayerMediaType)
	}
	cf, err := img.ConfigFile()
	if err != nil || cf.Architecture != "wasm" || cf.OS != "wasip1" {
		t.Errorf("config %+v (%v): want architecture wasm, os wasip1", cf, err)
	}

	// What the host runs: its fetcher takes the artifact, pinned by the
	// module's digest (an open registry: the fetcher's credentials come
	// from pull secrets, tested in internal/component).
	open := componenttest.StartRegistry(t, "", "")
	stdout, stderr, code = runCLI(t, "push", file, open.Host+"/actors/hello:v1")
	if code != 0 {
		t.Fatalf("push to an open registry: exit %d: %s", code, stderr)
	}
	mod, err := component.NewFetcher(component.Options{}).Fetch(context.Background(), "default",
		&v1alpha1.ComponentSource{Image: strings.TrimSpace(stdout), SHA256: sum})
	if err != nil {
		t.Fatalf("the host's fetcher refuses what troupe push wrote: %v", err)
	}
	if mod.Digest != "sha256:"+sum {
		t.Errorf("fetched %s, want sha256:%s", mod.Digest, sum)
	}

	// Refused before any network: a digest REF, a non-wasm file.
	if _, stderr, code := runCLI(t, "push", file, ref); code != exitUsage {
		t.Errorf("push to a digest: exit %d: %s", code, stderr)
	}
	txt := filepath.Join(t.TempDir(), "x.wasm")
	_ = os.WriteFile(txt, []byte("hello"), 0o644)
	if _, stderr, code := runCLI(t, "push", txt, reg.Host+"/x"); code != exitUsage || !strings.Contains(stderr, "not a WebAssembly module") {
		t.Errorf("push of a text file: exit %d: %s", code, stderr)
	}
}

func parseRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
