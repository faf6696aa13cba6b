package component

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/troupe-dev/troupe/api/v1alpha1"
)

// module returns a valid empty core module with a custom section holding
// tag, so that every test module has its own digest.
func module(tag string) []byte {
	name := "troupe-test"
	payload := append([]byte{byte(len(name))}, name...)
	payload = append(payload, tag...)
	b := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x00}
	// The section size is a LEB128; test payloads stay below 128 bytes.
	if len(payload) >= 128 {
		panic("tag too long")
	}
	b = append(b, byte(len(payload)))
	return append(b, payload...)
}

// gz returns b gzip-compressed.
func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestCache(t *testing.T) {
	c, err := NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mod := module("cache")
	d, err := c.Put(mod)
	if err != nil {
		t.Fatal(err)
	}
	if d != "sha256:"+sha(mod) {
		t.Fatalf("Put returned %s, want sha256:%s", d, sha(mod))
	}
	for _, key := range []string{d, sha(mod)} {
		got, ok, err := c.Get(key)
		if err != nil || !ok || !bytes.Equal(got, mod) {
			t.Fatalf("Get(%s) = %d bytes, %v, %v; want the module", key, len(got), ok, err)
		}
	}
	if _, ok, err := c.Get("sha256:" + sha([]byte("absent"))); ok || err != nil {
		t.Fatalf("Get of an absent digest = %v, %v; want false, nil", ok, err)
	}
	for _, bad := range []string{"", "sha256:", "sha256:../../etc/passwd", strings.Repeat("A", 64), "md5:" + sha(mod)} {
		if _, _, err := c.Get(bad); err == nil {
			t.Errorf("Get(%q) accepted a malformed digest", bad)
		}
	}
	// A damaged file is dropped, not served.
	path := filepath.Join(c.Dir(), "blobs", "sha256", sha(mod))
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.Get(d); ok || err != nil {
		t.Fatalf("Get of a damaged entry = %v, %v; want false, nil", ok, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the damaged entry was kept: %v", err)
	}
	manifest := "sha256:" + sha([]byte("manifest"))
	if _, ok := c.Ref(manifest); ok {
		t.Fatal("Ref found a manifest never recorded")
	}
	if err := c.PutRef(manifest, d); err != nil {
		t.Fatal(err)
	}
	if got, ok := c.Ref(manifest); !ok || got != d {
		t.Fatalf("Ref = %q, %v; want %q", got, ok, d)
	}
	if err := c.PutRef(manifest, "not a digest"); err == nil {
		t.Fatal("PutRef accepted a malformed module digest")
	}
}

func TestCheckModule(t *testing.T) {
	tests := map[string]struct {
		data []byte
		want string // "" accepts
	}{
		"core module":    {data: module("ok")},
		"empty":          {data: nil, want: "it is empty"},
		"short":          {data: []byte{0, 'a', 's'}, want: "too short"},
		"text format":    {data: []byte("(module (func))"), want: "WebAssembly text"},
		"commented text": {data: []byte(";; x\n(module)"), want: "WebAssembly text"},
		"json":           {data: []byte(`{"not": "wasm"}`), want: "looks like JSON"},
		"gzip":           {data: []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0}, want: "gzip"},
		// The engine reduces a component, and refuses its shape if need be.
		"component":      {data: []byte{0, 'a', 's', 'm', 0x0d, 0, 0x01, 0}},
		"future version": {data: []byte{0, 'a', 's', 'm', 0x02, 0, 0, 0}, want: "unsupported version"},
		"html":           {data: []byte("<!doctype html><html>"), want: "HTML"},
		"elf":            {data: []byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0}, want: "ELF"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := CheckModule("src", tc.data)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused a module: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			var fe *Error
			if err != nil && (!errors.As(err, &fe) || fe.Kind != KindInvalid) {
				t.Fatalf("error %v is not an *Error of kind %s", err, KindInvalid)
			}
		})
	}
}

// urlServer serves mod at /mod.wasm and counts the downloads.
func urlServer(t *testing.T, mod []byte) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/mod.wasm":
			hits.Add(1)
			_, _ = w.Write(mod)
		case "/page":
			_, _ = w.Write([]byte("<html>hello</html>"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestFetchURL(t *testing.T) {
	mod := module("url")
	srv, hits := urlServer(t, mod)
	cache, err := NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := NewFetcher(Options{Cache: cache, HTTPClient: srv.Client()})
	ctx := context.Background()
	src := &v1alpha1.ComponentSource{URL: srv.URL + "/mod.wasm", SHA256: sha(mod)}
	m, err := f.Fetch(ctx, "ns", src)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Bytes, mod) || m.Digest != "sha256:"+sha(mod) || m.Cached || m.Resolved != "" {
		t.Fatalf("first fetch: %+v", m)
	}
	m, err = f.Fetch(ctx, "ns", src)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Cached || hits.Load() != 1 {
		t.Fatalf("second fetch: cached %v after %d downloads; want the cache, 1 download", m.Cached, hits.Load())
	}
	// Another URL with the same pin downloads: knowing a digest is not
	// enough to get a module from the node's cache.
	m, err = f.Fetch(ctx, "ns", &v1alpha1.ComponentSource{URL: srv.URL + "/mod.wasm?copy=2", SHA256: sha(mod)})
	if err != nil {
		t.Fatal(err)
	}
	if m.Cached || hits.Load() != 2 {
		t.Fatalf("another URL: cached %v after %d downloads; want a download", m.Cached, hits.Load())
	}

	tests := map[string]struct {
		src      v1alpha1.ComponentSource
		maxBytes int64
		kind     ErrorKind
		want     string
		notWant  string
	}{
		"wrong digest": {src: v1alpha1.ComponentSource{URL: srv.URL + "/mod.wasm", SHA256: sha([]byte("other"))},
			kind: KindInvalid, want: "sha256:" + sha(mod)},
		"not wasm": {src: v1alpha1.ComponentSource{URL: srv.URL + "/page", SHA256: sha([]byte("<html>hello</html>"))},
			kind: KindInvalid, want: "not a WebAssembly module (it looks like HTML"},
		"not found": {src: v1alpha1.ComponentSource{URL: srv.URL + "/missing", SHA256: sha(mod)},
			kind: KindFetchFailed, want: "404"},
		"no pin": {src: v1alpha1.ComponentSource{URL: srv.URL + "/mod.wasm"},
			kind: KindInvalid, want: "needs spec.component.sha256"},
		"http": {src: v1alpha1.ComponentSource{URL: "http://example.com/x.wasm", SHA256: sha(mod)},
			kind: KindInvalid, want: "https://"},
		"too large": {src: v1alpha1.ComponentSource{URL: srv.URL + "/mod.wasm", SHA256: sha([]byte("x"))}, maxBytes: 8,
			kind: KindInvalid, want: "more than the 8"},
		"credentials stay out of messages": {
			src:  v1alpha1.ComponentSource{URL: strings.Replace(srv.URL, "https://", "https://user:hunter2@", 1) + "/missing?token=hunter2", SHA256: sha(mod)},
			kind: KindFetchFailed, want: "404", notWant: "hunter2"},
		"path": {src: v1alpha1.ComponentSource{Path: "./x.wasm"}, kind: KindInvalid, want: "troupe run"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := NewFetcher(Options{HTTPClient: srv.Client(), MaxBytes: tc.maxBytes})
			_, err := f.Fetch(ctx, "ns", &tc.src)
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if fe.Kind != tc.kind || !strings.Contains(fe.Message, tc.want) {
				t.Fatalf("error %s %q; want %s containing %q", fe.Kind, fe.Message, tc.kind, tc.want)
			}
			if tc.notWant != "" && strings.Contains(fe.Error(), tc.notWant) {
				t.Fatalf("error %q holds %q", fe.Error(), tc.notWant)
			}
		})
	}
}

func TestFetchConfigMap(t *testing.T) {
	mod := module("configmap")
	objs := []corev1.ConfigMap{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "wasm"}, BinaryData: map[string][]byte{"actor.wasm": mod, "junk": []byte("junk!junk!")},
			Data: map[string]string{"text": "(module)"}},
	}
	gzipped := gz(t, mod)
	objs[0].BinaryData["actor.wasm.gz"] = gzipped
	objs[0].BinaryData["bad.gz"] = gzipped[:len(gzipped)-4]          // the size trailer cut off
	objs[0].BinaryData["text.gz"] = gz(t, []byte("(module)"))        // a gzipped non-module
	objs[0].BinaryData["bomb.gz"] = gz(t, make([]byte, 64<<10))      // inflates past MaxBytes
	objs[0].BinaryData["header.gz"] = []byte{0x1f, 0x8b, 0x08, 0xff} // gzip magic, then garbage
	c := fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(&objs[0]).Build()
	cache, err := NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := NewFetcher(Options{Reader: c, Cache: cache, MaxBytes: 32 << 10})
	ctx := context.Background()
	m, err := f.Fetch(ctx, "ns", &v1alpha1.ComponentSource{ConfigMap: &v1alpha1.ComponentConfigMap{Name: "wasm", Key: "actor.wasm"}, SHA256: sha(mod)})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Bytes, mod) || m.Digest != "sha256:"+sha(mod) {
		t.Fatalf("fetched %+v", m)
	}
	if _, ok, _ := cache.Get(m.Digest); !ok {
		t.Fatal("the module was not cached")
	}
	// A gzipped module is the same module: same bytes, same digest, and the
	// pin is of the module, not of the compressed bytes.
	m, err = f.Fetch(ctx, "ns", &v1alpha1.ComponentSource{ConfigMap: &v1alpha1.ComponentConfigMap{Name: "wasm", Key: "actor.wasm.gz"}, SHA256: sha(mod)})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Bytes, mod) || m.Digest != "sha256:"+sha(mod) {
		t.Fatalf("fetched gzipped %+v", m)
	}
	tests := map[string]struct {
		ns   string
		ref  v1alpha1.ComponentConfigMap
		pin  string
		kind ErrorKind
		want string
	}{
		"missing ConfigMap":                {ns: "ns", ref: v1alpha1.ComponentConfigMap{Name: "nope", Key: "actor.wasm"}, kind: KindSourceMissing, want: "does not exist"},
		"other namespace":                  {ns: "other", ref: v1alpha1.ComponentConfigMap{Name: "wasm", Key: "actor.wasm"}, kind: KindSourceMissing, want: "ConfigMap other/wasm"},
		"missing key":                      {ns: "ns", ref: v1alpha1.ComponentConfigMap{Name: "wasm", Key: "nope"}, kind: KindSourceMissing, want: "no such key"},
		"WAT in data":                      {ns: "ns", ref: v1alpha1.ComponentConfigMap{Name: "wasm", Key: "text"}, kind: KindInvalid, want: "key text of ConfigMap ns/wasm holds WebAssembly text (WAT)"},
		"not wasm":                         {ns: "ns", ref: v1alpha1.ComponentConfigMap{Name: "wasm", Key: "junk"}, kind: KindInvalid, want: "not a WebAssembly module"},
		"pin mismatch":                     {ns: "ns", ref: v1alpha1.ComponentConfigMap{Name: "wasm", Key: "actor.wasm"}, pin: sha([]byte("x")), kind: KindInvalid, want: "pins sha256:" + sha([]byte("x"))},
		"gzip pin of the compressed bytes": {ns: "ns", ref: v1alpha1.ComponentConfigMap{Name: "wasm", Key: "actor.wasm.gz"}, pin: sha(gzipped), kind: KindInvalid, want: "pins sha256:" + sha(gzipped)},
		"gzip truncated":                   {ns: "ns", ref: v1alpha1.ComponentConfigMap{Name: "wasm", Key: "bad.gz"}, kind: KindInvalid, want: "decompressing the gzipped module"},
		"gzip header":                      {ns: "ns", ref: v1alpha1.ComponentConfigMap{Name: "wasm", Key: "header.gz"}, kind: KindInvalid, want: "gzip header is damaged"},
		"gzip not wasm":                    {ns: "ns", ref: v1alpha1.ComponentConfigMap{Name: "wasm", Key: "text.gz"}, kind: KindInvalid, want: "WebAssembly text"},
		"gzip bomb":                        {ns: "ns", ref: v1alpha1.ComponentConfigMap{Name: "wasm", Key: "bomb.gz"}, kind: KindInvalid, want: "inflates to more than the 32768 bytes"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := f.Fetch(ctx, tc.ns, &v1alpha1.ComponentSource{ConfigMap: &tc.ref, SHA256: tc.pin})
			var fe *Error
			if !errors.As(err, &fe) || fe.Kind != tc.kind || KindOf(err) != tc.kind || !strings.Contains(fe.Message, tc.want) {
				t.Fatalf("error %v; want %s containing %q", err, tc.kind, tc.want)
			}
		})
	}
}

// fromFile stores a file in cm as `kubectl create configmap --from-file`
// does: in data when it is valid UTF-8, else in binaryData.
func fromFile(cm *corev1.ConfigMap, key string, content []byte) {
	if utf8.Valid(content) {
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[key] = string(content)
		return
	}
	if cm.BinaryData == nil {
		cm.BinaryData = map[string][]byte{}
	}
	cm.BinaryData[key] = content
}

// TestFetchConfigMapMadeWithFromFile: whatever file a user turns into a
// ConfigMap with kubectl, the fetch runs it when it is a module (gzipped
// or not, in data or binaryData) and otherwise says what the bytes are.
func TestFetchConfigMapMadeWithFromFile(t *testing.T) {
	binary := module("\xff\xfe not UTF-8") // as a real module's code is
	small := module("utf8")                // all ASCII: lands in data
	if utf8.Valid(binary) || !utf8.Valid(small) {
		t.Fatal("the test modules are not what they claim")
	}
	tests := map[string]struct {
		key     string
		content []byte
		want    []byte // the module; nil expects an error
		inData  bool
		wantErr string
	}{
		"binary module":        {key: "actor.wasm", content: binary, want: binary},
		"gzipped module":       {key: "actor.wasm.gz", content: gz(t, binary), want: binary},
		"gzipped UTF-8 module": {key: "small.wasm.gz", content: gz(t, small), want: small},
		"UTF-8 module":         {key: "small.wasm", content: small, want: small, inData: true},
		"WAT": {key: "hello.wat", content: []byte("(module\n  (func (export \"run\")))\n"), inData: true,
			wantErr: "key hello.wat of ConfigMap ns/files holds WebAssembly text (WAT), not a binary module: compile it with wat2wasm (wat2wasm hello.wat -o hello.wasm)"},
		"WAT after comments": {key: "commented.wat", content: []byte(";; a greeting\n(; block (; nested ;) ;)\n\t(module)"), inData: true,
			wantErr: "holds WebAssembly text (WAT)"},
		"component WAT": {key: "c.wat", content: []byte("(component)"), inData: true, wantErr: "holds WebAssembly text (WAT)"},
		"plain text": {key: "README", content: []byte("hello, world\n"), inData: true,
			wantErr: "key README of ConfigMap ns/files holds 13 bytes of text, not a WebAssembly module (\\0asm) or gzip"},
		"JSON":                 {key: "x.json", content: []byte(`{"a": 1}`), inData: true, wantErr: "holds 8 bytes of text (looks like JSON), not a WebAssembly module"},
		"unclosed comment":     {key: "broken.wat", content: []byte("(; (module)"), inData: true, wantErr: "holds 11 bytes of text, not"},
		"empty":                {key: "empty", content: []byte{}, inData: true, wantErr: "holds nothing (an empty value)"},
		"binary, not a module": {key: "blob", content: []byte{0xff, 0xfe, 0, 1, 2, 3, 4, 5, 6}, wantErr: "is not a WebAssembly module (it starts with fffe"},
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "files"}}
	for _, tc := range tests {
		fromFile(cm, tc.key, tc.content)
	}
	f := NewFetcher(Options{Reader: fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(cm).Build()})
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, ok := cm.Data[tc.key]; ok != tc.inData {
				t.Fatalf("kubectl puts it in data: %v, the test says %v", ok, tc.inData)
			}
			m, err := f.Fetch(context.Background(), "ns", &v1alpha1.ComponentSource{ConfigMap: &v1alpha1.ComponentConfigMap{Name: "files", Key: tc.key}})
			if tc.want != nil {
				if err != nil || !bytes.Equal(m.Bytes, tc.want) || m.Digest != "sha256:"+sha(tc.want) {
					t.Fatalf("Fetch = %v, %v; want the module", m, err)
				}
				return
			}
			if err == nil || KindOf(err) != KindInvalid || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Fetch error %v, want %s saying %q", err, KindInvalid, tc.wantErr)
			}
		})
	}
}

// gatedReader counts Gets and holds each until release is closed.
type gatedReader struct {
	client.Reader
	gets    atomic.Int64
	release chan struct{}
}

func (g *gatedReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	g.gets.Add(1)
	<-g.release
	return g.Reader.Get(ctx, key, obj, opts...)
}

// Starts of many actors of one ConfigMap at once share one GET; a start
// after it is done reads the ConfigMap again (an edit must be seen).
func TestFetchConfigMapSharesConcurrentGets(t *testing.T) {
	mod := module("shared")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "wasm"}, BinaryData: map[string][]byte{"actor.wasm": mod, "actor.wasm.gz": gz(t, mod)}}
	g := &gatedReader{Reader: fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(cm).Build(), release: make(chan struct{})}
	f := NewFetcher(Options{Reader: g})
	const n = 20
	errs := make(chan error, n)
	for i := range n {
		key := "actor.wasm"
		if i%2 == 1 {
			key = "actor.wasm.gz" // another key of the same ConfigMap shares the GET too
		}
		go func() {
			m, err := f.Fetch(context.Background(), "ns", &v1alpha1.ComponentSource{ConfigMap: &v1alpha1.ComponentConfigMap{Name: "wasm", Key: key}})
			if err == nil && !bytes.Equal(m.Bytes, mod) {
				err = errors.New("wrong module")
			}
			errs <- err
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.cmWaiting.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d fetches waiting", f.cmWaiting.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	close(g.release)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := g.gets.Load(); got != 1 {
		t.Fatalf("%d GETs for %d concurrent fetches of one ConfigMap; want 1", got, n)
	}
	if _, err := f.Fetch(context.Background(), "ns", &v1alpha1.ComponentSource{ConfigMap: &v1alpha1.ComponentConfigMap{Name: "wasm", Key: "actor.wasm"}}); err != nil {
		t.Fatal(err)
	}
	if got := g.gets.Load(); got != 2 {
		t.Fatalf("%d GETs after a later fetch; want 2 (a finished GET is not reused)", got)
	}
}

// A caller that gives up does not fail the others sharing its GET.
func TestFetchConfigMapCallerCancelDoesNotFailOthers(t *testing.T) {
	mod := module("cancel")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "wasm"}, BinaryData: map[string][]byte{"actor.wasm": mod}}
	g := &gatedReader{Reader: fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(cm).Build(), release: make(chan struct{})}
	f := NewFetcher(Options{Reader: g})
	src := &v1alpha1.ComponentSource{ConfigMap: &v1alpha1.ComponentConfigMap{Name: "wasm", Key: "actor.wasm"}}
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := f.Fetch(ctx, "ns", src); first <- err }()
	second := make(chan error, 1)
	go func() { _, err := f.Fetch(context.Background(), "ns", src); second <- err }()
	deadline := time.Now().Add(10 * time.Second)
	for f.cmWaiting.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("fetches not waiting")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-first; err == nil {
		t.Fatal("the canceled fetch succeeded")
	}
	close(g.release)
	if err := <-second; err != nil {
		t.Fatalf("the other fetch failed with the first caller's cancel: %v", err)
	}
}
