package packaging_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/testutil"
)

// heredocs returns the bodies of the <<'YAML' here-documents of text.
func heredocs(text string) []string {
	var out []string
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasSuffix(strings.TrimSpace(lines[i]), "<<'YAML'") {
			continue
		}
		var body []string
		// The shell ends a here-document only at a line that is exactly
		// its word: an indented YAML would not end it.
		for i++; i < len(lines) && lines[i] != "YAML"; i++ {
			body = append(body, lines[i])
		}
		out = append(out, strings.Join(body, "\n"))
	}
	return out
}

// TestDocsHelloActor: the hello Actor the README, docs/install.md and the
// chart's NOTES tell users to apply is valid, reads the ConfigMap their
// `kubectl create configmap` line makes, and is the hello sample.
func TestDocsHelloActor(t *testing.T) {
	root := testutil.RepoRoot(t)
	want := readActor(t, filepath.Join(root, "config", "samples", "theater_v1alpha1_actor_hello.yaml"))
	for _, doc := range []string{"README.md", "docs/install.md", "charts/troupe/templates/NOTES.txt"} {
		t.Run(doc, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(root, doc))
			if err != nil {
				t.Fatal(err)
			}
			text := string(data)
			docs := heredocs(text)
			if len(docs) != 1 {
				t.Fatalf("%d <<'YAML' here-documents, want the hello Actor", len(docs))
			}
			var got v1alpha1.Actor
			if err := yaml.UnmarshalStrict([]byte(docs[0]), &got); err != nil {
				t.Fatalf("the hello Actor: %v\n%s", err, docs[0])
			}
			cm := want.Spec.Component.ConfigMap
			// kubectl create configmap --from-file names the key after the file.
			create := "create configmap " + cm.Name + " --from-file=config/samples/components/" + cm.Key
			if !strings.Contains(text, create) {
				t.Errorf("no `kubectl %s`", create)
			}
			g, w := got.Spec, want.Spec
			// The manifest name and version default; the docs leave them out.
			w.Name, w.Version, w.Description = "", "", ""
			if got.Name != want.Name || !reflect.DeepEqual(g, w) {
				t.Errorf("the docs' hello Actor differs from config/samples':\ndocs   %+v\nsample %+v", g, w)
			}
			for _, s := range []string{"wait --for=condition=Ready actor/hello", "get actors", "troupe chain show --from-host", "port-forward"} {
				if !strings.Contains(text, s) {
					t.Errorf("does not show %q", s)
				}
			}
		})
	}
}
