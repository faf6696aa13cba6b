package component

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/component/componenttest"
)

func tarOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFetchImage(t *testing.T) {
	reg := componenttest.StartRegistry(t, "", "")
	v1mod, v2mod := module("image v1"), module("image v2")
	d1 := reg.Push(t, "actors/hello", "latest", componenttest.Artifact(t, v1mod, "application/vnd.wasm.content.layer.v1+wasm"))
	cache, err := NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := NewFetcher(Options{Cache: cache})
	ctx := context.Background()
	image := reg.Host + "/actors/hello:latest"

	m, err := f.Fetch(ctx, "ns", &v1alpha1.ComponentSource{Image: image})
	if err != nil {
		t.Fatal(err)
	}
	want := reg.Host + "/actors/hello@" + d1.String()
	if !bytes.Equal(m.Bytes, v1mod) || m.Resolved != want || m.Cached || m.Source != image {
		t.Fatalf("fetched %s (resolved %s, cached %v); want the v1 module resolved to %s", m.Digest, m.Resolved, m.Cached, want)
	}

	// Fetched again: the tag is resolved again (one HEAD), the module
	// comes from the cache.
	before := reg.Manifests.Load()
	m, err = f.Fetch(ctx, "ns", &v1alpha1.ComponentSource{Image: image})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Cached || m.Resolved != want || reg.Manifests.Load()-before != 1 {
		t.Fatalf("second fetch: cached %v resolved %s after %d manifest requests; want cached, %s, 1", m.Cached, m.Resolved, reg.Manifests.Load()-before, want)
	}

	// By digest, with the module cached: one HEAD, to check access.
	before = reg.Manifests.Load()
	m, err = f.Fetch(ctx, "ns", &v1alpha1.ComponentSource{Image: want, SHA256: sha(v1mod)})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Cached || !bytes.Equal(m.Bytes, v1mod) || m.Resolved != want || reg.Manifests.Load()-before != 1 {
		t.Fatalf("digest fetch: cached %v after %d manifest requests; want cached, 1", m.Cached, reg.Manifests.Load()-before)
	}

	// The tag moves: the new digest is resolved and recorded.
	d2 := reg.Push(t, "actors/hello", "latest", componenttest.Artifact(t, v2mod, "application/wasm"))
	m, err = f.Fetch(ctx, "ns", &v1alpha1.ComponentSource{Image: image})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Bytes, v2mod) || m.Resolved != reg.Host+"/actors/hello@"+d2.String() {
		t.Fatalf("after the tag moved: resolved %s; want %s", m.Resolved, d2)
	}
	// The old digest still names the old module.
	m, err = f.Fetch(ctx, "ns", &v1alpha1.ComponentSource{Image: want})
	if err != nil || !bytes.Equal(m.Bytes, v1mod) {
		t.Fatalf("old digest: %v", err)
	}

	t.Run("registry down", func(t *testing.T) {
		down := componenttest.StartRegistry(t, "", "")
		mod := module("down")
		d := down.Push(t, "actors/down", "v1", componenttest.Artifact(t, mod, "application/wasm"))
		pinned := down.Host + "/actors/down@" + d.String()
		if _, err := f.Fetch(ctx, "ns", &v1alpha1.ComponentSource{Image: pinned}); err != nil {
			t.Fatal(err)
		}
		down.Close()
		// A digest-pinned image the node holds still runs ...
		m, err := f.Fetch(ctx, "ns", &v1alpha1.ComponentSource{Image: pinned})
		if err != nil || !m.Cached || !bytes.Equal(m.Bytes, mod) {
			t.Fatalf("digest fetch with the registry down: %v", err)
		}
		// ... a tag cannot be resolved.
		if _, err := f.Fetch(ctx, "ns", &v1alpha1.ComponentSource{Image: down.Host + "/actors/down:v1"}); err == nil {
			t.Fatal("resolved a tag with the registry down")
		}
	})

	t.Run("image layer tar", func(t *testing.T) {
		mod := module("tar")
		layer := static.NewLayer(tarOf(t, map[string][]byte{"README": []byte("hi"), "app/actor.wasm": mod}), types.OCILayer)
		img, err := mutate.AppendLayers(empty.Image, layer)
		if err != nil {
			t.Fatal(err)
		}
		reg.Push(t, "actors/tar", "v1", img)
		m, err := NewFetcher(Options{}).Fetch(ctx, "ns", &v1alpha1.ComponentSource{Image: reg.Host + "/actors/tar:v1"})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Bytes, mod) {
			t.Fatal("the module was not taken from the tar layer")
		}
	})

	t.Run("index picks wasip1/wasm", func(t *testing.T) {
		mod, other := module("wasip1"), module("linux")
		idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
			mutate.IndexAddendum{Add: componenttest.Artifact(t, other, "application/wasm"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
			mutate.IndexAddendum{Add: componenttest.Artifact(t, mod, "application/wasm"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "wasip1", Architecture: "wasm"}}},
		)
		reg.PushIndex(t, "actors/multi", "v1", idx)
		m, err := NewFetcher(Options{}).Fetch(ctx, "ns", &v1alpha1.ComponentSource{Image: reg.Host + "/actors/multi:v1"})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Bytes, mod) {
			t.Fatal("the index's wasip1/wasm entry was not picked")
		}
	})

	bad := map[string]struct {
		img   v1.Image
		image string
		pin   string
		kind  ErrorKind
		want  string
	}{
		"not wasm":         {img: componenttest.Artifact(t, []byte("#!/bin/sh\necho hi\n"), "application/wasm"), kind: KindInvalid, want: "not a WebAssembly module"},
		"two wasm layers":  {img: must(mutate.AppendLayers(componenttest.Artifact(t, module("a"), "application/wasm"), static.NewLayer(module("b"), "application/wasm"))), kind: KindInvalid, want: "2 wasm layers"},
		"pin mismatch":     {img: componenttest.Artifact(t, module("pinned"), "application/wasm"), pin: sha([]byte("x")), kind: KindInvalid, want: "pins sha256:"},
		"missing tag":      {image: reg.Host + "/actors/nothing:v9", kind: KindFetchFailed, want: "not found"},
		"malformed":        {image: "UPPER/Case::x", kind: KindInvalid, want: "not an image reference"},
		"unreachable host": {image: "127.0.0.1:1/actors/x:v1", kind: KindFetchFailed, want: "resolving image 127.0.0.1:1/actors/x:v1"},
	}
	i := 0
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			image := tc.image
			if tc.img != nil {
				i++
				image = fmt.Sprintf("%s/bad/x%d:v1", reg.Host, i)
				reg.Push(t, fmt.Sprintf("bad/x%d", i), "v1", tc.img)
			}
			_, err := NewFetcher(Options{}).Fetch(ctx, "ns", &v1alpha1.ComponentSource{Image: image, SHA256: tc.pin})
			var fe *Error
			if !errors.As(err, &fe) || fe.Kind != tc.kind || !strings.Contains(fe.Message, tc.want) {
				t.Fatalf("error %v; want %s containing %q", err, tc.kind, tc.want)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func pullSecret(ns, name, host, user, pass string) *corev1.Secret {
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(
			fmt.Sprintf(`{"auths":{"https://%s/":{"auth":%q}}}`, host, auth))},
	}
}

func TestFetchImagePullSecrets(t *testing.T) {
	const pass = "s3cr3t-registry-password"
	reg := componenttest.StartRegistry(t, "robot", pass)
	mod := module("private")
	d := reg.Push(t, "private/actor", "v1", componenttest.Artifact(t, mod, "application/wasm"))
	c := fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(
		pullSecret("ns", "regcred", reg.Host, "robot", pass),
		pullSecret("ns", "wrong", reg.Host, "robot", "nope"),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "opaque"}, Data: map[string][]byte{"password": []byte(pass)}},
	).Build()
	f := NewFetcher(Options{Reader: c})
	ctx := context.Background()
	image := reg.Host + "/private/actor:v1"
	secrets := func(names ...string) []v1alpha1.LocalObjectReference {
		var out []v1alpha1.LocalObjectReference
		for _, n := range names {
			out = append(out, v1alpha1.LocalObjectReference{Name: n})
		}
		return out
	}
	m, err := f.Fetch(ctx, "ns", &v1alpha1.ComponentSource{Image: image, ImagePullSecrets: secrets("missing", "regcred")})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Bytes, mod) || m.Resolved != reg.Host+"/private/actor@"+d.String() {
		t.Fatalf("fetched %s resolved %s", m.Digest, m.Resolved)
	}
	tests := map[string]struct {
		secrets []v1alpha1.LocalObjectReference
		kind    ErrorKind
		want    string
	}{
		"no secret":      {kind: KindFetchFailed, want: "refused access"},
		"wrong password": {secrets: secrets("wrong"), kind: KindFetchFailed, want: "refused access"},
		"missing secret": {secrets: secrets("missing"), kind: KindFetchFailed, want: "imagePullSecrets not found: missing"},
		"not a pull secret": {secrets: secrets("opaque"), kind: KindInvalid,
			want: "must be of type kubernetes.io/dockerconfigjson"},
	}
	// The node's cache holds the module now, but a namespace without the
	// credentials still may not have it, not even by digest.
	if _, err := f.Fetch(ctx, "other", &v1alpha1.ComponentSource{Image: m.Resolved}); err == nil {
		t.Fatal("a namespace without credentials got a private module from the node's cache")
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := f.Fetch(ctx, "ns", &v1alpha1.ComponentSource{Image: image, ImagePullSecrets: tc.secrets})
			var fe *Error
			if !errors.As(err, &fe) || fe.Kind != tc.kind || !strings.Contains(fe.Message, tc.want) {
				t.Fatalf("error %v; want %s containing %q", err, tc.kind, tc.want)
			}
			if strings.Contains(err.Error(), pass) {
				t.Fatalf("the error %q holds the password", err)
			}
		})
	}
}

func TestKeychain(t *testing.T) {
	secret := func(key string) registryAuth {
		host, path := splitRegistryKey(key)
		return registryAuth{host: host, path: path, cfg: authn.AuthConfig{Username: key}}
	}
	kc := newKeychain([]registryAuth{
		secret("https://index.docker.io/v1/"),
		secret("*.example.com"),
		secret("registry.example.com"),
		secret("registry.example.com/team"),
		secret("localhost:5000"),
	})
	tests := map[string]struct {
		image string
		want  string // the key whose credentials apply; "" anonymous
	}{
		"docker hub":          {image: "library/busybox:1", want: "https://index.docker.io/v1/"},
		"docker.io alias":     {image: "docker.io/me/actor:1", want: "https://index.docker.io/v1/"},
		"exact host":          {image: "registry.example.com/other/actor:1", want: "registry.example.com"},
		"path prefix":         {image: "registry.example.com/team/actor:1", want: "registry.example.com/team"},
		"path is not prefix":  {image: "registry.example.com/teamwork/actor:1", want: "registry.example.com"},
		"glob":                {image: "eu.example.com/actor:1", want: "*.example.com"},
		"glob is one label":   {image: "a.b.example.com/actor:1", want: ""},
		"port must match":     {image: "localhost:5001/actor:1", want: ""},
		"port":                {image: "localhost:5000/actor:1", want: "localhost:5000"},
		"unrelated registry":  {image: "ghcr.io/x/actor:1", want: ""},
		"case-insensitive hm": {image: "Registry.Example.com/x/actor:1", want: "registry.example.com"},
	}
	for label, tc := range tests {
		t.Run(label, func(t *testing.T) {
			ref, err := name.ParseReference(tc.image, name.WeakValidation)
			if err != nil {
				t.Fatal(err)
			}
			a, err := kc.Resolve(ref.Context())
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := a.Authorization()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Username != tc.want {
				t.Fatalf("credentials of %q apply; want %q", cfg.Username, tc.want)
			}
		})
	}
}
