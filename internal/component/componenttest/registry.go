package componenttest

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// WasmLayer is the media type of a wasm artifact's layer.
const WasmLayer types.MediaType = "application/vnd.wasm.content.layer.v1+wasm"

// Registry is an in-process OCI registry, closed with the test.
type Registry struct {
	// Host is 127.0.0.1:port, which go-containerregistry reaches over
	// plain http.
	Host string
	// Manifests counts the manifest requests it answered.
	Manifests atomic.Int32

	srv        *httptest.Server
	user, pass string
}

// StartRegistry starts a registry; with a user, every request needs that
// user and password (basic auth).
func StartRegistry(t testing.TB, user, pass string) *Registry {
	t.Helper()
	r := &Registry{user: user, pass: pass}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.user != "" {
			if u, p, ok := req.BasicAuth(); !ok || u != r.user || p != r.pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		if strings.Contains(req.URL.Path, "/manifests/") {
			r.Manifests.Add(1)
		}
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	r.Host = strings.TrimPrefix(r.srv.URL, "http://")
	return r
}

// Close stops the registry before the test ends (a registry gone down).
func (r *Registry) Close() { r.srv.Close() }

// Auth is the option that authenticates to the registry.
func (r *Registry) Auth() remote.Option {
	if r.user == "" {
		return remote.WithAuth(authn.Anonymous)
	}
	return remote.WithAuth(&authn.Basic{Username: r.user, Password: r.pass})
}

// Push writes img as repo:tag and returns its manifest digest.
func (r *Registry) Push(t testing.TB, repo, tag string, img v1.Image) v1.Hash {
	t.Helper()
	ref := r.ref(t, repo, tag)
	if err := remote.Write(ref, img, r.Auth()); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// PushIndex writes the image index idx as repo:tag.
func (r *Registry) PushIndex(t testing.TB, repo, tag string, idx v1.ImageIndex) {
	t.Helper()
	ref := r.ref(t, repo, tag)
	if err := remote.WriteIndex(ref, idx, r.Auth()); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
}

func (r *Registry) ref(t testing.TB, repo, tag string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(fmt.Sprintf("%s/%s:%s", r.Host, repo, tag))
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// Artifact is an OCI artifact with one layer, data, of media type mt.
func Artifact(t testing.TB, data []byte, mt types.MediaType) v1.Image {
	t.Helper()
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1),
		mutate.Addendum{Layer: static.NewLayer(data, mt)})
	if err != nil {
		t.Fatal(err)
	}
	return img
}
