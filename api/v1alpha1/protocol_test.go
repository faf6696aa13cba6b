package v1alpha1

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// readProtocolDoc returns PROTOCOL.md, at the repository's root.
func readProtocolDoc(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "PROTOCOL.md"))
	if err != nil {
		t.Fatalf("PROTOCOL.md, which protocol.go cites: %v", err)
	}
	return string(doc)
}

// TestProtocolDocNamesEveryName: every label, annotation, finalizer and
// field manager of protocol.go is in PROTOCOL.md, and so is this build's
// protocol version, with its section of the change log.
func TestProtocolDocNamesEveryName(t *testing.T) {
	doc := readProtocolDoc(t)
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "protocol.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasSuffix(name.Name, "Label") && !strings.HasSuffix(name.Name, "Annotation") &&
					!strings.HasSuffix(name.Name, "Finalizer") && !strings.HasSuffix(name.Name, "FieldOwner") {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("%s is not a string literal", name.Name)
				}
				value := constant.StringVal(constant.MakeFromLiteral(lit.Value, lit.Kind, 0))
				checked++
				if !strings.Contains(doc, value) {
					t.Errorf("PROTOCOL.md does not mention %s (%q)", name.Name, value)
				}
			}
		}
	}
	if checked < 6 {
		t.Fatalf("found only %d names in protocol.go", checked)
	}
	for _, want := range []string{
		fmt.Sprintf("This is **protocol version %d**", ProtocolVersion),
		fmt.Sprintf("### Version %d ", ProtocolVersion),
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("PROTOCOL.md does not say %q", want)
		}
	}
}

// TestProtocolCitations: every citation of a PROTOCOL.md section (the file
// name, '#', the heading's anchor) in the repository's code and docs, and
// every link within PROTOCOL.md, names a heading that exists.
func TestProtocolCitations(t *testing.T) {
	root := filepath.Join("..", "..")
	anchors := map[string]map[string]bool{}
	headings := func(rel string) map[string]bool {
		if a, ok := anchors[rel]; ok {
			return a
		}
		data, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		a := markdownAnchors(string(data))
		anchors[rel] = a
		return a
	}
	cite := regexp.MustCompile(`PROTOCOL\.md#([A-Za-z0-9_-]+)`)
	cited := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != root || d.Name() == "bin" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || (!strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, ".md") && !strings.HasSuffix(path, ".sh")) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for _, m := range cite.FindAllStringSubmatch(string(data), -1) {
			cited++
			if !headings("PROTOCOL.md")[m[1]] {
				t.Errorf("%s cites PROTOCOL.md#%s, which is no heading of it", rel, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if cited < 5 {
		t.Fatalf("only %d citations of PROTOCOL.md sections found", cited)
	}

	// Links inside PROTOCOL.md: (#anchor) and (path.md#anchor).
	link := regexp.MustCompile(`\]\(([^)#\s]*)(?:#([^)\s]+))?\)`)
	for _, m := range link.FindAllStringSubmatch(readProtocolDoc(t), -1) {
		target, anchor := m[1], m[2]
		if target == "" {
			target = "PROTOCOL.md"
		}
		if strings.Contains(target, "://") {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, target)); err != nil {
			t.Errorf("PROTOCOL.md links to %s: %v", target, err)
			continue
		}
		if anchor != "" && !headings(target)[anchor] {
			t.Errorf("PROTOCOL.md links to %s#%s, which is no heading of it", target, anchor)
		}
	}
}

// markdownAnchors returns the anchors GitHub gives a document's headings:
// lower case, punctuation dropped, spaces turned into hyphens.
func markdownAnchors(doc string) map[string]bool {
	out := map[string]bool{}
	fence := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "```") {
			fence = !fence
		}
		if fence || !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteByte('-')
			}
		}
		out[b.String()] = true
	}
	return out
}

func TestNamespacesAnnotation(t *testing.T) {
	tests := map[string]struct {
		value  string
		want   []string
		wantOK bool
	}{
		"one":                     {value: "team-a", want: []string{"team-a"}, wantOK: true},
		"several":                 {value: "team-a,team-b", want: []string{"team-a", "team-b"}, wantOK: true},
		"empty serves nothing":    {value: ""},
		"empty entry":             {value: "team-a,,team-b"},
		"trailing comma":          {value: "team-a,"},
		"space":                   {value: "team-a, team-b"},
		"upper case":              {value: "Team-A"},
		"not a label (dot)":       {value: "team.a"},
		"longer than a namespace": {value: strings.Repeat("a", 64)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := SplitNamespaces(tc.value)
			if ok != tc.wantOK || !slices.Equal(got, tc.want) {
				t.Fatalf("SplitNamespaces(%q) = %q, %v; want %q, %v", tc.value, got, ok, tc.want, tc.wantOK)
			}
		})
	}
	// What a host writes, its manager reads back: sorted, each once.
	joined := JoinNamespaces([]string{"team-b", "team-a", "team-b"})
	if joined != "team-a,team-b" {
		t.Fatalf("JoinNamespaces = %q, want team-a,team-b", joined)
	}
	if got, ok := SplitNamespaces(joined); !ok || !slices.Equal(got, []string{"team-a", "team-b"}) {
		t.Fatalf("SplitNamespaces(JoinNamespaces(...)) = %q, %v", got, ok)
	}
}
