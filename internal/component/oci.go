package component

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/troupe-dev/troupe/api/v1alpha1"
)

// WasmMediaTypes are the layer media types taken as a raw module. Besides
// these, any media type ending in "+wasm" is.
var WasmMediaTypes = []types.MediaType{
	"application/wasm",
	"application/vnd.wasm.content.layer.v1+wasm",
	"application/vnd.module.wasm.content.layer.v1+wasm",
}

func isWasmMediaType(mt types.MediaType) bool {
	for _, w := range WasmMediaTypes {
		if mt == w {
			return true
		}
	}
	return strings.HasSuffix(string(mt), "+wasm")
}

// fetchImage resolves src.Image to a manifest digest, and returns the
// module the manifest holds: from the cache when this manifest was fetched
// before, else from the registry.
func (f *Fetcher) fetchImage(ctx context.Context, namespace string, src *v1alpha1.ComponentSource) (*Module, error) {
	ref, err := name.ParseReference(src.Image)
	if err != nil {
		return nil, invalidErr("spec.component.image %q is not an image reference: %v", src.Image, err)
	}
	kc, missing, err := f.pullKeychain(ctx, namespace, src.ImagePullSecrets)
	if err != nil {
		return nil, err
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithUserAgent(f.o.UserAgent)}
	if f.o.RegistryTransport != nil {
		opts = append(opts, remote.WithTransport(f.o.RegistryTransport))
	}
	// Resolve a tag to the digest of what it names now. A digest reference
	// is its own resolution, but it is asked about too, with this
	// namespace's credentials: the node's cache is shared by every
	// namespace, and a module one of them pulled must not reach another
	// that may not pull it (what kubelet's AlwaysPullImages is for).
	var manifest v1.Hash
	pinned, isDigest := ref.(name.Digest)
	if isDigest {
		if manifest, err = v1.NewHash(pinned.DigestStr()); err != nil {
			return nil, invalidErr("spec.component.image %q: %v", src.Image, err)
		}
	}
	cached := func(manifest v1.Hash) ([]byte, string, bool) {
		if f.o.Cache == nil {
			return nil, "", false
		}
		modDigest, ok := f.o.Cache.Ref(manifest.String())
		if !ok {
			return nil, "", false
		}
		data, ok, err := f.o.Cache.Get(modDigest)
		return data, modDigest, err == nil && ok
	}
	desc, err := remote.Head(ref, opts...)
	if err != nil && !refused(err) {
		// Some registries do not answer HEAD for manifests.
		d, err2 := remote.Get(ref, opts...)
		if err2 == nil {
			desc, err = &d.Descriptor, nil
		} else {
			err = err2
		}
	}
	switch {
	case err != nil && isDigest && !refused(err):
		// The registry is unreachable, but did not refuse: a module
		// cached by this very digest may still run (availability, as
		// kubelet's IfNotPresent).
		if data, modDigest, ok := cached(manifest); ok {
			f.o.Logger.Info("registry unreachable; running the cached module of a digest-pinned image", "image", src.Image, "error", oneLine(err.Error()))
			return &Module{Bytes: data, Digest: modDigest, Source: src.Image, Resolved: src.Image, Cached: true}, nil
		}
		return nil, registryErr(err, src.Image, "resolving", missing)
	case err != nil:
		return nil, registryErr(err, src.Image, "resolving", missing)
	case isDigest && desc.Digest != manifest:
		return nil, invalidErr("image %s: the registry answered with manifest %s", src.Image, desc.Digest)
	}
	manifest = desc.Digest
	resolved := ref.Context().Digest(manifest.String()).String()
	source := src.Image
	if data, modDigest, ok := cached(manifest); ok {
		return &Module{Bytes: data, Digest: modDigest, Source: source, Resolved: resolved, Cached: true}, nil
	}
	digestRef := ref.Context().Digest(manifest.String())
	full, err := remote.Get(digestRef, opts...)
	if err != nil {
		return nil, registryErr(err, src.Image, "fetching", missing)
	}
	img, err := f.pickImage(full, source, opts)
	if err != nil {
		return nil, err
	}
	data, err := f.moduleFromImage(img, source)
	if err != nil {
		return nil, err
	}
	m, err := f.keep(source, manifest.String(), data, Digest(data))
	if err != nil {
		return nil, err
	}
	m.Resolved = resolved
	return m, nil
}

// pullKeychain reads the image pull secrets. A missing secret is skipped
// (as kubelet does) and named in the error should the registry then refuse.
func (f *Fetcher) pullKeychain(ctx context.Context, namespace string, refs []v1alpha1.LocalObjectReference) (*keychain, []string, error) {
	var auths []registryAuth
	var missing []string
	for _, r := range refs {
		if f.o.Reader == nil {
			return nil, nil, fetchErr(nil, "reading imagePullSecret %s: the host has no API client", r.Name)
		}
		var s corev1.Secret
		if err := f.o.Reader.Get(ctx, k8stypes.NamespacedName{Namespace: namespace, Name: r.Name}, &s); err != nil {
			if apierrors.IsNotFound(err) {
				missing = append(missing, r.Name)
				continue
			}
			return nil, nil, fetchErr(err, "reading imagePullSecret %s", r.Name)
		}
		a, err := parsePullSecret(&s)
		if err != nil {
			return nil, nil, &Error{Kind: KindInvalid, Message: "imagePullSecret: " + err.Error(), Err: err}
		}
		auths = append(auths, a...)
	}
	return newKeychain(auths), missing, nil
}

// refused reports whether the registry answered no: unauthorized,
// forbidden or not found.
func refused(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	switch te.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return true
	}
	return false
}

// registryErr turns a registry failure into an *Error; credentials never
// appear in transport errors.
func registryErr(err error, image, doing string, missingSecrets []string) *Error {
	var te *transport.Error
	msg := fmt.Sprintf("%s image %s", doing, image)
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			msg += ": the registry refused access (check spec.component.imagePullSecrets)"
			if len(missingSecrets) > 0 {
				msg += fmt.Sprintf("; imagePullSecrets not found: %s", strings.Join(missingSecrets, ", "))
			}
			return &Error{Kind: KindFetchFailed, Message: msg, Err: err}
		case http.StatusNotFound:
			return &Error{Kind: KindFetchFailed, Message: msg + ": not found in the registry", Err: err}
		}
	}
	return fetchErr(err, "%s", msg)
}

// pickImage chooses the manifest holding the module: the descriptor itself,
// or from an index the wasm platform's entry (wasip1/wasm or wasi/wasm), or
// its only entry.
func (f *Fetcher) pickImage(desc *remote.Descriptor, source string, opts []remote.Option) (v1.Image, error) {
	if !desc.MediaType.IsIndex() {
		img, err := desc.Image()
		if err != nil {
			return nil, fetchErr(err, "reading image %s", source)
		}
		return img, nil
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, fetchErr(err, "reading image index %s", source)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fetchErr(err, "reading image index %s", source)
	}
	var pick *v1.Descriptor
	var platforms []string
	for i := range im.Manifests {
		m := &im.Manifests[i]
		if m.Platform != nil {
			platforms = append(platforms, m.Platform.OS+"/"+m.Platform.Architecture)
			if (m.Platform.OS == "wasip1" || m.Platform.OS == "wasi") && m.Platform.Architecture == "wasm" {
				pick = m
				break
			}
		}
	}
	if pick == nil && len(im.Manifests) == 1 {
		pick = &im.Manifests[0]
	}
	if pick == nil {
		return nil, invalidErr("image index %s has no wasip1/wasm or wasi/wasm entry (it has %s)", source, strings.Join(platforms, ", "))
	}
	img, err := idx.Image(pick.Digest)
	if err != nil {
		return nil, fetchErr(err, "reading image %s@%s", source, pick.Digest)
	}
	return img, nil
}

// moduleFromImage finds the module in an image's layers: the one layer with
// a wasm media type, or else a single layer that is itself a module or a
// tar archive holding exactly one .wasm file (an image built FROM scratch).
func (f *Fetcher) moduleFromImage(img v1.Image, source string) ([]byte, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fetchErr(err, "reading the layers of image %s", source)
	}
	var wasm []v1.Layer
	for _, l := range layers {
		mt, err := l.MediaType()
		if err != nil {
			return nil, fetchErr(err, "reading the layers of image %s", source)
		}
		if isWasmMediaType(mt) {
			wasm = append(wasm, l)
		}
	}
	switch {
	case len(wasm) == 1:
		return f.readLayer(wasm[0], source, false)
	case len(wasm) > 1:
		return nil, invalidErr("image %s has %d wasm layers; an actor's image holds one module", source, len(wasm))
	case len(layers) != 1:
		return nil, invalidErr("image %s has %d layers and none of a wasm media type (%s); an actor's image holds one module", source, len(layers), WasmMediaTypes[0])
	}
	data, err := f.readLayer(layers[0], source, true)
	if err != nil {
		return nil, err
	}
	if len(data) >= 4 && string(data[:4]) == string(wasmMagic) {
		return data, nil
	}
	return f.moduleFromTar(data, source)
}

func (f *Fetcher) readLayer(l v1.Layer, source string, uncompress bool) ([]byte, error) {
	if size, err := l.Size(); err == nil && size > f.o.MaxBytes {
		return nil, invalidErr("image %s: the module layer is %d bytes, more than the %d allowed", source, size, f.o.MaxBytes)
	}
	open := l.Compressed
	if uncompress {
		open = l.Uncompressed
	}
	rc, err := open()
	if err != nil {
		return nil, fetchErr(err, "downloading the module layer of image %s", source)
	}
	defer rc.Close()
	// go-containerregistry checks the blob's digest as it is read.
	data, err := readLimited(rc, f.o.MaxBytes)
	if errors.Is(err, errTooLarge) {
		return nil, invalidErr("image %s: the module is more than the %d bytes allowed", source, f.o.MaxBytes)
	}
	if err != nil {
		return nil, fetchErr(err, "downloading the module layer of image %s", source)
	}
	return data, nil
}

// moduleFromTar returns the one regular *.wasm file of a tar archive.
func (f *Fetcher) moduleFromTar(data []byte, source string) ([]byte, error) {
	mod, err := extractWasm(data, f.o.MaxBytes)
	if err != nil {
		return nil, invalidErr("image %s: its one layer is neither a module nor a tar archive holding one: %v", source, err)
	}
	return mod, nil
}

// extractWasm returns the single regular file named *.wasm in a tar
// archive, bounded by max bytes.
func extractWasm(data []byte, max int64) ([]byte, error) {
	tr := tar.NewReader(strings.NewReader(string(data)))
	var found []byte
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the archive: %w", err)
		}
		if h.Typeflag != tar.TypeReg || path.Ext(h.Name) != ".wasm" {
			continue
		}
		names = append(names, h.Name)
		if len(names) > 1 {
			return nil, fmt.Errorf("it holds several .wasm files (%s)", strings.Join(names, ", "))
		}
		if h.Size > max {
			return nil, fmt.Errorf("%s is %d bytes, more than the %d allowed", h.Name, h.Size, max)
		}
		if found, err = readLimited(tr, max); err != nil {
			return nil, fmt.Errorf("reading %s: %w", h.Name, err)
		}
	}
	if len(names) == 0 {
		return nil, errors.New("it holds no .wasm file")
	}
	return found, nil
}
