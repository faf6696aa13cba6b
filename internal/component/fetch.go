package component

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/singleflight"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/textutil"
)

// DefaultMaxBytes bounds a module: the engine compiles nothing larger.
const DefaultMaxBytes = 256 << 20

// DefaultTimeout bounds one fetch, download included.
const DefaultTimeout = 2 * time.Minute

// ErrorKind says whether fetching again may help.
type ErrorKind string

const (
	// KindFetchFailed: the source could not be reached or read (network,
	// registry, missing ConfigMap); a later attempt may succeed.
	KindFetchFailed ErrorKind = "FetchFailed"
	// KindInvalid: the source answered, but with something that is not the
	// module asked for (digest mismatch, not WebAssembly, too large, a
	// malformed reference); it will not get better by itself.
	KindInvalid ErrorKind = "InvalidComponent"
	// KindSourceMissing: the ConfigMap the source names, or its key, does
	// not exist (yet). It may appear at any time: a host waits for it
	// rather than failing.
	KindSourceMissing ErrorKind = "SourceMissing"
)

// KindOf is the kind of err's *Error, or "" when it has none.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

// Error is why a module could not be fetched. Message is one line fit for a
// status condition; it never holds credentials.
type Error struct {
	Kind    ErrorKind
	Message string
	Err     error
}

func (e *Error) Error() string { return e.Message }

func (e *Error) Unwrap() error { return e.Err }

func fetchErr(err error, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	if err != nil {
		msg += ": " + oneLine(err.Error())
	}
	return &Error{Kind: KindFetchFailed, Message: msg, Err: err}
}

func missingErr(format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	return &Error{Kind: KindSourceMissing, Message: msg, Err: errors.New(msg)}
}

func invalidErr(format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	return &Error{Kind: KindInvalid, Message: msg, Err: errors.New(msg)}
}

// oneLine keeps a status message on one bounded line.
func oneLine(s string) string {
	return textutil.Truncate(strings.Join(strings.Fields(s), " "), 512)
}

// Module is a fetched module.
type Module struct {
	// Bytes is the module.
	Bytes []byte
	// Digest is "sha256:<hex>" of Bytes.
	Digest string
	// Source names where it came from: the image reference as written, the
	// ConfigMap key, or the URL.
	Source string
	// Resolved is, for an image, the reference by manifest digest the tag
	// resolved to (registry/repo@sha256:...); "" for other sources.
	Resolved string
	// Cached is true when no download was needed.
	Cached bool
}

// Options configure a Fetcher.
type Options struct {
	// Cache keeps modules on the node; nil caches nothing.
	Cache *Cache
	// Reader reads ConfigMaps (component source) and Secrets (image pull
	// secrets). It should read from the API server, not from a cache of
	// every ConfigMap in the cluster.
	Reader client.Reader
	// HTTPClient downloads url sources; nil is a client with sane timeouts.
	HTTPClient *http.Client
	// RegistryTransport reaches registries; nil is go-containerregistry's
	// default transport.
	RegistryTransport http.RoundTripper
	// MaxBytes bounds a module; 0 is DefaultMaxBytes.
	MaxBytes int64
	// Timeout bounds one fetch; 0 is DefaultTimeout.
	Timeout time.Duration
	// UserAgent is sent to registries and URL servers.
	UserAgent string
	// Logger receives what the fetcher does (never credentials).
	Logger logr.Logger
}

// Fetcher fetches modules. Concurrent fetches of the same source share one
// download. It is safe for concurrent use.
type Fetcher struct {
	o     Options
	group singleflight.Group
	// configMaps shares one GET of a ConfigMap among the starts that
	// want it at the same time: a burst of 1,000 actors of one component
	// was 1,000 GETs of the same object.
	configMaps singleflight.Group
	// cmWaiting counts callers waiting on a shared ConfigMap GET (tests).
	cmWaiting atomic.Int64
}

// NewFetcher returns a Fetcher.
func NewFetcher(o Options) *Fetcher {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: o.Timeout}
	}
	if o.UserAgent == "" {
		o.UserAgent = "troupe-host"
	}
	return &Fetcher{o: o}
}

// Fetch returns the module src names, for an actor in namespace. A failure
// is an *Error.
func (f *Fetcher) Fetch(ctx context.Context, namespace string, src *v1alpha1.ComponentSource) (*Module, error) {
	if src == nil {
		return nil, invalidErr("spec.component is empty")
	}
	ctx, cancel := context.WithTimeout(ctx, f.o.Timeout)
	defer cancel()
	var (
		m   *Module
		err error
	)
	switch src.Kind() {
	case v1alpha1.SourceImage:
		m, err = f.shared("image\x00"+namespace+"\x00"+src.Image+"\x00"+pullSecretNames(src), func() (*Module, error) {
			return f.fetchImage(ctx, namespace, src)
		})
	case v1alpha1.SourceConfigMap:
		m, err = f.fetchConfigMap(ctx, namespace, src.ConfigMap)
	case v1alpha1.SourceURL:
		m, err = f.shared("url\x00"+src.URL+"\x00"+src.SHA256, func() (*Module, error) {
			return f.fetchURL(ctx, src.URL, src.SHA256)
		})
	case v1alpha1.SourcePath:
		return nil, invalidErr("spec.component.path is for `troupe run` only: a host cannot read files of your machine; use image, configMap or url")
	default:
		return nil, invalidErr("spec.component must name exactly one source: image, configMap or url")
	}
	if err != nil {
		return nil, err
	}
	if src.SHA256 != "" && m.Digest != "sha256:"+src.SHA256 {
		return nil, invalidErr("module from %s has digest %s, but spec.component.sha256 pins sha256:%s", m.Source, m.Digest, src.SHA256)
	}
	return m, nil
}

// shared runs fn once for concurrent callers with the same key; each gets
// its own Module value (the bytes are shared and must not be modified).
func (f *Fetcher) shared(key string, fn func() (*Module, error)) (*Module, error) {
	v, err, _ := f.group.Do(key, func() (any, error) { return fn() })
	if err != nil {
		return nil, err
	}
	m := *v.(*Module)
	return &m, nil
}

func pullSecretNames(src *v1alpha1.ComponentSource) string {
	names := make([]string, len(src.ImagePullSecrets))
	for i, s := range src.ImagePullSecrets {
		names[i] = s.Name
	}
	return strings.Join(names, ",")
}

func (f *Fetcher) fetchConfigMap(ctx context.Context, namespace string, ref *v1alpha1.ComponentConfigMap) (*Module, error) {
	source := fmt.Sprintf("key %s of ConfigMap %s/%s", ref.Key, namespace, ref.Name)
	if f.o.Reader == nil {
		return nil, fetchErr(nil, "reading %s: the host has no API client", source)
	}
	cm, err := f.getConfigMap(ctx, types.NamespacedName{Namespace: namespace, Name: ref.Name})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, missingErr("reading %s: the ConfigMap does not exist", source)
		}
		return nil, fetchErr(err, "reading %s", source)
	}
	data, ok := cm.BinaryData[ref.Key]
	if !ok {
		text, inData := cm.Data[ref.Key]
		if !inData {
			return nil, missingErr("reading %s: the ConfigMap has no such key", source)
		}
		// kubectl create configmap --from-file puts a file that is valid
		// UTF-8 in data and anything else in binaryData, so a module or a
		// gzipped one is in binaryData, but a small module may well be
		// valid UTF-8: its bytes are just as good in data. Any other text
		// is said for what it is.
		if !strings.HasPrefix(text, string(wasmMagic)) {
			return nil, invalidErr("%s holds %s", source, describeText(ref.Key, text))
		}
		data = []byte(text)
	}
	if bytes.HasPrefix(data, gzipMagic) {
		var err error
		if data, err = gunzip(source, data, f.o.MaxBytes); err != nil {
			return nil, err
		}
	}
	// Kept in the cache not to serve it again (the ConfigMap is read each
	// time), but so that an operator finds every module the node ran.
	return f.keep(source, "", data, Digest(data))
}

// getConfigMap reads the ConfigMap key from the API server, one GET for
// all the callers that ask while it is in flight (the object returned is
// shared: read only). The GET runs under its own timeout, not the first
// caller's context, so a caller that gives up does not fail the others.
// A caller that joins a GET already in flight may see the ConfigMap as it
// was a few milliseconds before it asked, which an actor start can't tell
// from asking a little earlier.
func (f *Fetcher) getConfigMap(ctx context.Context, key types.NamespacedName) (*corev1.ConfigMap, error) {
	ch := f.configMaps.DoChan(key.String(), func() (any, error) {
		gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.o.Timeout)
		defer cancel()
		var cm corev1.ConfigMap
		if err := f.o.Reader.Get(gctx, key, &cm); err != nil {
			return nil, err
		}
		return &cm, nil
	})
	f.cmWaiting.Add(1)
	defer f.cmWaiting.Add(-1)
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*corev1.ConfigMap), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// gzipMagic starts a gzip stream (RFC 1952); a module never does (it starts
// with "\0asm").
var gzipMagic = []byte{0x1f, 0x8b}

// gunzip returns the module a ConfigMap holds gzip-compressed. A ConfigMap
// holds at most 1 MiB, and a Go actor is about 3 MiB (1 MiB compressed), so
// binaryData may carry the module gzipped; its digest (and a sha256 pin) is
// the module's, not the compressed bytes'. At most max bytes are inflated,
// so a small ConfigMap can't make the host allocate gigabytes.
func gunzip(source string, data []byte, max int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, invalidErr("reading %s: the gzip header is damaged: %v", source, err)
	}
	zr.Multistream(false)
	out, err := io.ReadAll(io.LimitReader(zr, max+1))
	switch {
	case err != nil:
		return nil, invalidErr("reading %s: decompressing the gzipped module: %v", source, err)
	case int64(len(out)) > max:
		return nil, invalidErr("%s: the gzipped module inflates to more than the %d bytes allowed", source, max)
	}
	return out, nil
}

func (f *Fetcher) fetchURL(ctx context.Context, raw, pin string) (*Module, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, invalidErr("spec.component.url %q is not an absolute https:// URL", redactURL(raw))
	}
	source := redactURL(raw)
	if pin == "" {
		return nil, invalidErr("spec.component.url needs spec.component.sha256: a downloaded module is only run when its digest is pinned")
	}
	if _, err := parseDigest(pin); err != nil {
		return nil, invalidErr("spec.component.sha256: %v", err)
	}
	// Served from the cache only for this very URL: knowing a module's
	// digest must not be enough to get a module another Actor downloaded
	// with credentials in its URL.
	urlKey := Digest([]byte("url\x00" + raw))
	if f.o.Cache != nil {
		if d, ok := f.o.Cache.Ref(urlKey); ok && d == "sha256:"+pin {
			if data, ok, err := f.o.Cache.Get(pin); err == nil && ok {
				return &Module{Bytes: data, Digest: d, Source: source, Cached: true}, nil
			}
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, invalidErr("spec.component.url %q: %v", source, err)
	}
	req.Header.Set("User-Agent", f.o.UserAgent)
	resp, err := f.o.HTTPClient.Do(req)
	if err != nil {
		return nil, fetchErr(scrubURLError(err), "downloading %s", source)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fetchErr(nil, "downloading %s: HTTP %s", source, resp.Status)
	}
	if resp.ContentLength > f.o.MaxBytes {
		return nil, invalidErr("downloading %s: the module is %d bytes, more than the %d allowed", source, resp.ContentLength, f.o.MaxBytes)
	}
	data, err := readLimited(resp.Body, f.o.MaxBytes)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, invalidErr("downloading %s: the module is more than the %d bytes allowed", source, f.o.MaxBytes)
		}
		return nil, fetchErr(err, "downloading %s", source)
	}
	d := Digest(data)
	if d != "sha256:"+pin {
		return nil, invalidErr("module from %s has digest %s, but spec.component.sha256 pins sha256:%s", source, d, pin)
	}
	return f.keep(source, urlKey, data, d)
}

// redactURL drops a URL's user info and query, which may hold credentials,
// from what is shown in a status or a log.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	u.Fragment = ""
	return u.String()
}

// scrubURLError drops the URL (with its query) from a *url.Error.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

var errTooLarge = errors.New("too large")

func readLimited(r io.Reader, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, errTooLarge
	}
	return data, nil
}

// Magic numbers of WebAssembly binaries: "\0asm" and a version.
var (
	wasmMagic      = []byte{0x00, 0x61, 0x73, 0x6d}
	coreVersion    = []byte{0x01, 0x00, 0x00, 0x00}
	componentLayer = []byte{0x01, 0x00} // the layer field of a component's header
)

// keep checks that data, of digest d, is a module and keeps it in the
// node's cache, under ref too when ref is not "" (an image manifest, a
// URL), so that a later fetch of ref needs no download. A cache that
// cannot write is logged, not fatal: the module is in hand.
func (f *Fetcher) keep(source, ref string, data []byte, d string) (*Module, error) {
	if err := f.checkModule(source, data); err != nil {
		return nil, err
	}
	if f.o.Cache != nil {
		if _, err := f.o.Cache.Put(data); err != nil {
			f.o.Logger.Error(err, "caching a module", "source", source)
		} else if ref != "" {
			if err := f.o.Cache.PutRef(ref, d); err != nil {
				f.o.Logger.Error(err, "recording where a module came from", "source", source)
			}
		}
	}
	return &Module{Bytes: data, Digest: d, Source: source}, nil
}

// checkModule refuses what is not a WebAssembly module or component up
// front, with a message better than a compiler's.
func (f *Fetcher) checkModule(source string, data []byte) error {
	if int64(len(data)) > f.o.MaxBytes {
		return invalidErr("%s: the module is %d bytes, more than the %d allowed", source, len(data), f.o.MaxBytes)
	}
	return CheckModule(source, data)
}

// CheckModule reports whether data starts like a core WebAssembly module
// or a WebAssembly component (the engine reduces one to its main module,
// and says then whether it can run its shape); the error names source and
// says what data looks like instead.
func CheckModule(source string, data []byte) error {
	switch {
	case len(data) < 8 || !bytes.Equal(data[:4], wasmMagic):
		return invalidErr("%s is not a WebAssembly module (%s)", source, sniff(data))
	case bytes.Equal(data[6:8], componentLayer):
		return nil
	case !bytes.Equal(data[4:8], coreVersion):
		return invalidErr("%s is a WebAssembly binary of unsupported version %x", source, data[4:8])
	}
	return nil
}

// sniff says in a few words what data looks like.
func sniff(data []byte) string {
	switch {
	case len(data) == 0:
		return "it is empty"
	case len(data) < 8 && bytes.HasPrefix(wasmMagic, data[:min(len(data), 4)]):
		return fmt.Sprintf("it is %d bytes, too short for a module header", len(data))
	case bytes.HasPrefix(data, gzipMagic):
		return "it is gzip data"
	case isWAT(data):
		return "it is WebAssembly text; compile it with wat2wasm"
	case bytes.HasPrefix(data, []byte{0x7f, 'E', 'L', 'F'}):
		return "it is an ELF executable"
	case len(data) > 262 && string(data[257:262]) == "ustar":
		return "it is a tar archive"
	}
	if what := textLooks(data); what != "" {
		return "it " + what
	}
	n := min(len(data), 8)
	return fmt.Sprintf("it starts with %x", data[:n])
}

// describeText says what the text under a ConfigMap's data key is, instead
// of the module that was expected there.
func describeText(key string, text string) string {
	b := []byte(text)
	switch {
	case len(b) == 0:
		return "nothing (an empty value), not a WebAssembly module"
	case isWAT(b):
		wasm := strings.TrimSuffix(key, ".wat") + ".wasm"
		return fmt.Sprintf("WebAssembly text (WAT), not a binary module: compile it with wat2wasm (wat2wasm %s -o %s) and store the .wasm, which kubectl create configmap --from-file puts in binaryData", key, wasm)
	}
	what := ""
	if looks := textLooks(b); looks != "" {
		what = " (" + looks + ")"
	}
	return fmt.Sprintf("%d bytes of text%s, not a WebAssembly module (\\0asm) or gzip", len(b), what)
}

// textLooks names a few kinds of text by their first bytes; "" when it
// cannot tell.
func textLooks(data []byte) string {
	t := bytes.TrimSpace(data)
	switch {
	case bytes.HasPrefix(t, []byte("<")):
		return "looks like HTML or XML"
	case bytes.HasPrefix(t, []byte("{")):
		return "looks like JSON"
	case bytes.HasPrefix(t, []byte("#!")):
		return "looks like a script"
	}
	return ""
}

// isWAT reports whether data is WebAssembly text: after blanks and
// comments (";; ..." lines, "(; ... ;)" blocks, which nest), a module or a
// component.
func isWAT(data []byte) bool {
	for {
		data = bytes.TrimLeft(data, " \t\r\n")
		switch {
		case bytes.HasPrefix(data, []byte(";;")):
			end := bytes.IndexByte(data, '\n')
			if end < 0 {
				return false
			}
			data = data[end+1:]
		case bytes.HasPrefix(data, []byte("(;")):
			var ok bool
			if data, ok = skipBlockComment(data); !ok {
				return false
			}
		default:
			return bytes.HasPrefix(data, []byte("(module")) || bytes.HasPrefix(data, []byte("(component"))
		}
	}
}

// skipBlockComment returns what follows the block comment data starts with
// ("(; ... ;)", nesting); ok is false when it does not end.
func skipBlockComment(data []byte) (rest []byte, ok bool) {
	depth := 0
	for i := 0; i+1 < len(data); i++ {
		switch {
		case data[i] == '(' && data[i+1] == ';':
			depth++
			i++
		case data[i] == ';' && data[i+1] == ')':
			depth--
			i++
			if depth == 0 {
				return data[i+1:], true
			}
		}
	}
	return nil, false
}
