package v1alpha1_test

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/troupe-dev/troupe/api/v1alpha1"
)

// FuzzParseActor: no document makes ParseActor or Validate panic, and an
// Actor that validates survives a round trip through YAML unchanged (the
// defaults are a fixed point and nothing is lost in encoding).
func FuzzParseActor(f *testing.F) {
	for _, spec := range validSpecs {
		f.Add([]byte(actorYAML("a", spec)))
	}
	for _, c := range invalidSpecs {
		f.Add([]byte(actorYAML("a", c.spec)))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		a, err := v1alpha1.ParseActor(doc)
		if err != nil {
			return
		}
		for _, allowPath := range []bool{false, true} {
			if a.Validate(v1alpha1.ValidationOptions{AllowPath: allowPath}) != nil {
				return
			}
		}
		out, err := yaml.Marshal(a)
		if err != nil {
			t.Fatalf("marshalling a valid Actor: %v", err)
		}
		b, err := v1alpha1.ParseActor(out)
		if err != nil {
			t.Fatalf("re-parsing %s: %v", out, err)
		}
		if !equality.Semantic.DeepEqual(a.Spec, b.Spec) {
			t.Fatalf("round trip changed the spec:\n%s", out)
		}
	})
}
