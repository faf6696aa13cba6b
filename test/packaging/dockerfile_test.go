package packaging_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/internal/testutil"
)

// logicalLines joins the lines a trailing backslash continues, and drops
// comments and blank lines.
func logicalLines(text string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		out = append(out, cur.String())
		cur.Reset()
	}
	return out
}

// shellWords splits s like a shell would for these simple lines: on blanks
// outside quotes, quotes removed.
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// goBuild is one `go build` command line.
type goBuild struct {
	env      map[string]string
	flags    []string // every flag but -ldflags and -o, as written
	ldflags  string
	packages []string
}

// runsGoBuild reports whether line runs go build (not merely mentions it
// in a string).
func runsGoBuild(line string) bool {
	words := shellWords(line)
	for i := 0; i+1 < len(words); i++ {
		if words[i] == "go" && words[i+1] == "build" {
			return true
		}
	}
	return false
}

// parseGoBuild finds the go build in line: the VAR=value words right before
// "go", the flags and the packages after "build".
func parseGoBuild(t *testing.T, where, line string) goBuild {
	t.Helper()
	words := shellWords(line)
	i := slices.Index(words, "go")
	if i < 0 || i+1 >= len(words) || words[i+1] != "build" {
		t.Fatalf("%s: no `go build` in %q", where, line)
	}
	b := goBuild{env: map[string]string{}}
	for j := i - 1; j >= 0; j-- {
		k, v, ok := strings.Cut(words[j], "=")
		if !ok || strings.HasPrefix(k, "-") {
			break
		}
		b.env[k] = v
	}
	for j := i + 2; j < len(words); j++ {
		w := strings.TrimSuffix(words[j], ")")
		switch {
		case w == "-ldflags" && j+1 < len(words):
			b.ldflags = words[j+1]
			j++
		case w == "-o" && j+1 < len(words):
			j++
		case strings.HasPrefix(w, "-"):
			b.flags = append(b.flags, w)
		default:
			b.packages = append(b.packages, w)
		}
	}
	slices.Sort(b.packages)
	return b
}

type dockerfile struct {
	args    map[string]string // ARG defaults
	from    []string          // images of the FROM lines
	copies  [][]string        // COPY words from the build context
	copyOut [][]string        // COPY --from=... words
	runs    []string
	user    string
	entry   string
}

func parseDockerfile(t *testing.T) dockerfile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	d := dockerfile{args: map[string]string{}}
	for _, line := range logicalLines(string(data)) {
		instr, rest, _ := strings.Cut(line, " ")
		words := shellWords(rest)
		switch strings.ToUpper(instr) {
		case "ARG":
			if k, v, ok := strings.Cut(rest, "="); ok {
				d.args[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		case "FROM":
			for _, w := range words {
				if !strings.HasPrefix(w, "--") {
					d.from = append(d.from, w)
					break
				}
			}
		case "COPY":
			if strings.HasPrefix(words[0], "--from=") {
				d.copyOut = append(d.copyOut, words[1:])
			} else {
				d.copies = append(d.copies, words)
			}
		case "RUN":
			d.runs = append(d.runs, rest)
		case "USER":
			d.user = strings.TrimSpace(rest)
		case "ENTRYPOINT":
			d.entry = strings.TrimSpace(rest)
		}
	}
	return d
}

// TestDockerfileBuildsWhatImageLocalBuilds: the Dockerfile (for those with
// Docker) and hack/image-local.sh (make image-local, no Docker) must build
// the same binaries, with the same flags, from packages that exist, and lay
// them out the same way.
func TestDockerfileBuildsWhatImageLocalBuilds(t *testing.T) {
	root := testutil.RepoRoot(t)
	d := parseDockerfile(t)
	var docker *goBuild
	for _, r := range d.runs {
		if runsGoBuild(r) {
			b := parseGoBuild(t, "Dockerfile", r)
			docker = &b
		}
	}
	if docker == nil {
		t.Fatal("the Dockerfile runs no go build")
	}
	script, err := os.ReadFile(filepath.Join(root, "hack", "image-local.sh"))
	if err != nil {
		t.Fatal(err)
	}
	var local *goBuild
	for _, l := range logicalLines(string(script)) {
		if runsGoBuild(l) {
			b := parseGoBuild(t, "hack/image-local.sh", l)
			local = &b
		}
	}
	if local == nil {
		t.Fatal("hack/image-local.sh runs no go build")
	}

	if len(docker.packages) < 3 || !slices.Equal(docker.packages, local.packages) {
		t.Errorf("the Dockerfile builds %v, hack/image-local.sh %v", docker.packages, local.packages)
	}
	// The same flags, the build's version in the same variable.
	version := regexp.MustCompile(`\$\{?(VERSION|version)\}?`)
	if a, b := version.ReplaceAllString(docker.ldflags, "$$VERSION"), version.ReplaceAllString(local.ldflags, "$$VERSION"); a != b || !strings.Contains(a, "internal/version.Version=$VERSION") {
		t.Errorf("-ldflags differ or set no version:\nDockerfile          %q\nhack/image-local.sh %q", docker.ldflags, local.ldflags)
	}
	if !slices.Equal(docker.flags, local.flags) || !slices.Contains(docker.flags, "-trimpath") {
		t.Errorf("go build flags: Dockerfile %v, hack/image-local.sh %v; want the same, with -trimpath", docker.flags, local.flags)
	}
	// Static binaries for Linux: the distroless/static image has no libc.
	resolve := func(v string) string {
		if name, ok := strings.CutPrefix(v, "$"); ok {
			return d.args[strings.Trim(name, "{}")]
		}
		return v
	}
	for _, b := range []*goBuild{docker, local} {
		if b.env["CGO_ENABLED"] != "0" || resolve(b.env["GOOS"]) != "linux" {
			t.Errorf("go build env %v: want CGO_ENABLED=0 and GOOS linux", b.env)
		}
	}

	// The packages exist and are commands.
	out, err := run(t, nil, "go", append([]string{"list", "-f", "{{.ImportPath}} {{.Name}}"}, docker.packages...)...)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		path, name, _ := strings.Cut(line, " ")
		if name != "main" {
			t.Errorf("%s is package %s, not a command", path, name)
		}
		names = append(names, "/"+filepath.Base(path))
	}

	// Both images carry them at the root, run as 65532, start /manager.
	if len(d.from) != 2 || !strings.HasPrefix(d.from[0], "golang:") || d.from[1] != "gcr.io/distroless/static:nonroot" {
		t.Errorf("FROM %v, want a golang builder and gcr.io/distroless/static:nonroot", d.from)
	}
	gomod, _ := os.ReadFile(filepath.Join(root, "go.mod"))
	if m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod); m == nil || len(d.from) == 0 || d.from[0] != "golang:"+string(m[1]) {
		t.Errorf("builder %v does not match go.mod's go version", d.from)
	}
	var copied []string
	for _, c := range d.copyOut {
		if c[len(c)-1] != "/" {
			t.Errorf("COPY --from %v: want the binaries at the image's root", c)
		}
		for _, src := range c[:len(c)-1] {
			copied = append(copied, "/"+filepath.Base(src))
		}
	}
	slices.Sort(copied)
	slices.Sort(names)
	if !slices.Equal(copied, names) {
		t.Errorf("the image gets %v, the build makes %v", copied, names)
	}
	if !slices.Equal(names, imageFiles) {
		t.Errorf("the image's root holds %v; update imageFiles (%v), which the mount checks use", names, imageFiles)
	}
	// The image config is JSON in the script, its quotes escaped or not.
	user := regexp.MustCompile(`\\?"User\\?"\s*:\s*\\?"([^"\\]+)\\?"`).FindSubmatch(script)
	entry := regexp.MustCompile(`\\?"Entrypoint\\?"\s*:\s*\[\s*\\?"([^"\\]+)\\?"\s*\]`).FindSubmatch(script)
	if user == nil || entry == nil {
		t.Fatal("hack/image-local.sh's image config sets no User or Entrypoint")
	}
	if d.user != string(user[1]) || d.entry != `["`+string(entry[1])+`"]` {
		t.Errorf("Dockerfile USER %s ENTRYPOINT %s, hack/image-local.sh User %s Entrypoint [%s]", d.user, d.entry, user[1], entry[1])
	}

	// make docker-build passes the version the Makefile computes.
	mk, err := run(t, nil, "make", "-n", "docker-build", "VERSION=v9.9.9", "IMAGE=troupe:test")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(mk, "docker build") || !regexp.MustCompile(`--build-arg VERSION='?v9\.9\.9`).MatchString(mk) || !regexp.MustCompile(`-t '?troupe:test`).MatchString(mk) {
		t.Errorf("make docker-build runs %q; want docker build with --build-arg VERSION and -t IMAGE", mk)
	}
}

// dockerignore is a .dockerignore's rules, with Docker's semantics: the
// last rule matching a path (or one of its parent directories) decides; a
// rule starting with ! re-includes.
type dockerignore []struct {
	re      *regexp.Regexp
	include bool
}

func parseDockerignore(t *testing.T, text string) dockerignore {
	t.Helper()
	var rules dockerignore
	for _, line := range strings.Split(text, "\n") {
		p := strings.TrimSpace(line)
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		include := strings.HasPrefix(p, "!")
		p = filepath.ToSlash(filepath.Clean(strings.TrimPrefix(strings.TrimPrefix(p, "!"), "/")))
		if strings.ContainsAny(p, `[\`) {
			t.Fatalf(".dockerignore pattern %q: this test does not know character classes or escapes", p)
		}
		var b strings.Builder
		b.WriteString("^")
		for i := 0; i < len(p); i++ {
			switch {
			case strings.HasPrefix(p[i:], "**/"):
				b.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(p[i:], "**"):
				b.WriteString(".*")
				i++
			case p[i] == '*':
				b.WriteString("[^/]*")
			case p[i] == '?':
				b.WriteString("[^/]")
			default:
				b.WriteString(regexp.QuoteMeta(p[i : i+1]))
			}
		}
		b.WriteString("$")
		rules = append(rules, struct {
			re      *regexp.Regexp
			include bool
		}{regexp.MustCompile(b.String()), include})
	}
	return rules
}

func (d dockerignore) excluded(path string) bool {
	excluded := false
	for _, r := range d {
		for p := path; p != "."; p = filepath.ToSlash(filepath.Dir(p)) {
			if r.re.MatchString(p) {
				excluded = !r.include
				break
			}
		}
	}
	return excluded
}

func TestDockerignoreRules(t *testing.T) {
	d := parseDockerignore(t, "*\n!go.mod\n!internal/\n**/*_test.go\n**/testdata/\n")
	for path, want := range map[string]bool{
		"go.mod": false, "README.md": true, "bin/troupe": true, "internal/host/host.go": false,
		"internal/host/host_test.go": true, "internal/component/testdata/x.wasm": true, "docs/install.md": true,
	} {
		if got := d.excluded(path); got != want {
			t.Errorf("excluded(%s) = %v, want %v", path, got, want)
		}
	}
}

// TestDockerBuildContext lays out what the Dockerfile's COPY lines take
// from a build context filtered by .dockerignore, and checks that the go
// build finds every package and file it needs there.
func TestDockerBuildContext(t *testing.T) {
	root := testutil.RepoRoot(t)
	d := parseDockerfile(t)
	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	rules := parseDockerignore(t, string(ignore))
	ctx := t.TempDir()
	copied := 0
	for _, c := range d.copies {
		srcs, dest := c[:len(c)-1], c[len(c)-1]
		for _, src := range srcs {
			src = filepath.Clean(src)
			err := filepath.WalkDir(filepath.Join(root, src), func(p string, e fs.DirEntry, err error) error {
				if err != nil || e.IsDir() {
					return err
				}
				rel, _ := filepath.Rel(root, p)
				if rules.excluded(filepath.ToSlash(rel)) {
					return nil
				}
				// COPY a b/ and COPY dir/ dir/ both land at dest + the
				// path below src.
				below, _ := filepath.Rel(filepath.Join(root, src), p)
				target := filepath.Join(ctx, dest, below)
				if dest == "./" || dest == "." {
					target = filepath.Join(ctx, filepath.Base(p))
				}
				data, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
					return err
				}
				copied++
				return os.WriteFile(target, data, 0o644)
			})
			if err != nil {
				t.Fatalf("COPY %s: %v", src, err)
			}
		}
	}
	if copied == 0 {
		t.Fatal("the Dockerfile copies nothing from the build context")
	}
	var build *goBuild
	for _, r := range d.runs {
		if runsGoBuild(r) {
			b := parseGoBuild(t, "Dockerfile", r)
			build = &b
		}
	}
	if build == nil {
		t.Fatal("the Dockerfile runs no go build")
	}
	args := append([]string{"-C", ctx, "list", "-e", "-deps", "-f",
		`{{with .Error}}{{.}}{{"\n"}}{{end}}{{range .DepsErrors}}{{.}}{{"\n"}}{{end}}`}, build.packages...)
	out, err := run(t, []string{"GOWORK=off", "GOFLAGS=-mod=readonly", "CGO_ENABLED=0", "GOOS=linux"}, "go", args...)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "" {
		t.Errorf("in the Docker build context (the Dockerfile's COPY lines, filtered by .dockerignore) go build would fail:\n%s", out)
	}
}
