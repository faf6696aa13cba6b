package v1alpha1_test

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	v1alpha1 "github.com/troupe-dev/troupe/api/v1alpha1"
)

// TestValidateAcceptsValidSpecs: what the API server admits, Validate
// accepts (the admission suite checks the server on the same specs).
func TestValidateAcceptsValidSpecs(t *testing.T) {
	for name, spec := range validSpecs {
		t.Run(name, func(t *testing.T) {
			a, err := v1alpha1.ParseActor([]byte(actorYAML("a", spec)))
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Validate(v1alpha1.ValidationOptions{}); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

// TestValidateRejectsInvalidSpecs: what the API server rejects, Validate
// rejects on the same field.
func TestValidateRejectsInvalidSpecs(t *testing.T) {
	for name, c := range invalidSpecs {
		t.Run(name, func(t *testing.T) {
			a, err := v1alpha1.ParseActor([]byte(actorYAML("a", c.spec)))
			if c.goDecodeError {
				if err == nil {
					t.Fatalf("ParseActor accepted %s", c.spec)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			errs := a.Spec.Validate(field.NewPath("spec"), v1alpha1.ValidationOptions{})
			if !hasError(errs, c.field, c.goMessage()) {
				t.Errorf("want an error on %s containing %q, got %v", c.field, c.goMessage(), errs)
			}
			if a.Validate(v1alpha1.ValidationOptions{}) == nil {
				t.Error("Actor.Validate returned nil")
			}
		})
	}
}

func TestValidatePathOnlyLocally(t *testing.T) {
	tests := map[string]struct {
		spec    string
		opts    v1alpha1.ValidationOptions
		field   string // "" = valid
		message string
	}{
		"path for troupe run": {
			spec: `component: {path: ./hello.wasm}`,
			opts: v1alpha1.ValidationOptions{AllowPath: true},
		},
		"path in a cluster": {
			spec:  `component: {path: ./hello.wasm}`,
			field: "spec.component.path", message: "`troupe run` only",
		},
		"path and image for troupe run": {
			spec:  `component: {path: ./hello.wasm, image: hello}`,
			opts:  v1alpha1.ValidationOptions{AllowPath: true},
			field: "spec.component", message: "image, configMap, url or path",
		},
		"nothing for troupe run": {
			spec:  `component: {}`,
			opts:  v1alpha1.ValidationOptions{AllowPath: true},
			field: "spec.component", message: "exactly one component source",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a, err := v1alpha1.ParseActor([]byte(actorYAML("a", tc.spec)))
			if err != nil {
				t.Fatal(err)
			}
			errs := a.Spec.Validate(field.NewPath("spec"), tc.opts)
			if tc.field == "" {
				if len(errs) > 0 {
					t.Errorf("unexpected errors: %v", errs)
				}
				return
			}
			if !hasError(errs, tc.field, tc.message) {
				t.Errorf("want an error on %s containing %q, got %v", tc.field, tc.message, errs)
			}
		})
	}
}

func TestValidateKindAndVersion(t *testing.T) {
	a := &v1alpha1.Actor{Spec: v1alpha1.ActorSpec{Component: v1alpha1.ComponentSource{Image: "hello"}}}
	if err := a.Validate(v1alpha1.ValidationOptions{}); err != nil {
		t.Fatalf("an Actor built in Go (no TypeMeta): %v", err)
	}
	a.APIVersion = "theater.troupe.dev/v1"
	if err := a.Validate(v1alpha1.ValidationOptions{}); err == nil || !strings.Contains(err.Error(), "apiVersion") {
		t.Errorf("wrong apiVersion: %v", err)
	}
}

func TestParseActor(t *testing.T) {
	tests := map[string]struct {
		doc     string
		wantErr string
	}{
		"unknown field": {
			doc:     "apiVersion: theater.troupe.dev/v1alpha1\nkind: Actor\nmetadata: {name: a}\nspec: {component: {image: x}, restartPolciy: Never}",
			wantErr: "restartPolciy",
		},
		"another kind": {
			doc:     "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {}",
			wantErr: "want theater.troupe.dev/v1alpha1 Actor",
		},
		"no apiVersion": {
			doc:     "kind: Actor\nmetadata: {name: a}\nspec: {component: {image: x}}",
			wantErr: "want theater.troupe.dev/v1alpha1 Actor",
		},
		"not YAML": {
			doc:     "{{{",
			wantErr: "decoding Actor",
		},
		"valid JSON": {
			doc: `{"apiVersion":"theater.troupe.dev/v1alpha1","kind":"Actor","metadata":{"name":"a"},"spec":{"component":{"image":"x"}}}`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a, err := v1alpha1.ParseActor([]byte(tc.doc))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if a.Spec.RestartPolicy != v1alpha1.RestartOnFailure || a.Spec.Limits.MaxMemoryPages != v1alpha1.DefaultMaxMemoryPages {
					t.Errorf("defaults not applied: %+v", a.Spec)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestLimitsDefault(t *testing.T) {
	var l v1alpha1.Limits
	if got := l.CallTimeoutDuration(); got != 5*time.Second {
		t.Errorf("unset CallTimeoutDuration = %s", got)
	}
	if got := l.MaxMemoryBytes(); got != 64<<20 {
		t.Errorf("unset MaxMemoryBytes = %d", got)
	}
	l.Default()
	want := v1alpha1.Limits{MaxMemoryPages: 1024, CallTimeout: &metav1.Duration{Duration: 5 * time.Second},
		MaxLogBytes: 16384, MaxEventBytes: 1 << 20, MaxMetricNames: 100}
	if l.MaxMemoryPages != want.MaxMemoryPages || *l.CallTimeout != *want.CallTimeout || l.MaxLogBytes != want.MaxLogBytes ||
		l.MaxEventBytes != want.MaxEventBytes || l.MaxMetricNames != want.MaxMetricNames {
		t.Errorf("Default() = %+v, want %+v", l, want)
	}
	set := v1alpha1.Limits{MaxMemoryPages: 2, CallTimeout: &metav1.Duration{Duration: time.Second}, MaxLogBytes: 3, MaxEventBytes: 4, MaxMetricNames: 5}
	kept := set
	kept.Default()
	if kept.MaxMemoryPages != 2 || kept.CallTimeout.Duration != time.Second || kept.MaxLogBytes != 3 || kept.MaxEventBytes != 4 || kept.MaxMetricNames != 5 {
		t.Errorf("Default() overwrote set limits: %+v", kept)
	}
	if got := kept.MaxMemoryBytes(); got != 2*65536 {
		t.Errorf("MaxMemoryBytes = %d", got)
	}
}

func TestManifestName(t *testing.T) {
	a := &v1alpha1.Actor{ObjectMeta: metav1.ObjectMeta{Name: "obj"}}
	if got := a.ManifestName(); got != "obj" {
		t.Errorf("without spec.name: %q", got)
	}
	a.Spec.Name = "manifest"
	if got := a.ManifestName(); got != "manifest" {
		t.Errorf("with spec.name: %q", got)
	}
	var spec v1alpha1.ActorSpec
	if got := spec.ManifestName(nil); got != "" {
		t.Errorf("no metadata: %q", got)
	}
}

func TestSourceKind(t *testing.T) {
	tests := map[string]struct {
		c    v1alpha1.ComponentSource
		want v1alpha1.SourceKind
	}{
		"image":     {v1alpha1.ComponentSource{Image: "x", SHA256: sha}, v1alpha1.SourceImage},
		"configMap": {v1alpha1.ComponentSource{ConfigMap: &v1alpha1.ComponentConfigMap{Name: "a", Key: "b"}}, v1alpha1.SourceConfigMap},
		"url":       {v1alpha1.ComponentSource{URL: "https://x/y", SHA256: sha}, v1alpha1.SourceURL},
		"path":      {v1alpha1.ComponentSource{Path: "./y.wasm"}, v1alpha1.SourcePath},
		"none":      {v1alpha1.ComponentSource{SHA256: sha}, ""},
		"two":       {v1alpha1.ComponentSource{Image: "x", Path: "y"}, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.c.Kind(); got != tc.want {
				t.Errorf("Kind() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestShortHead(t *testing.T) {
	head := strings.Repeat("0123456789abcdef", 4)
	if got := v1alpha1.ShortHead(head); got != "0123456789ab" {
		t.Errorf("ShortHead = %q", got)
	}
	if got := v1alpha1.ShortHead("abc"); got != "abc" {
		t.Errorf("ShortHead of a short string = %q", got)
	}
}

func TestHandlerLookup(t *testing.T) {
	var spec v1alpha1.ActorSpec
	if _, ok := spec.Handler(v1alpha1.HandlerRuntime); ok {
		t.Error("found a handler in an empty spec")
	}
	spec.Default()
	if _, ok := spec.Handler(v1alpha1.HandlerRuntime); !ok {
		t.Error("the default handlers lack runtime")
	}
}

func hasError(errs field.ErrorList, path, msg string) bool {
	for _, e := range errs {
		if e.Field == path && strings.Contains(e.Error(), msg) {
			return true
		}
	}
	return false
}
