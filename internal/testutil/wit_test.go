package testutil

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestWITMatchesTheABITables keeps wit/ and the export names in step: the
// ticker's core export name is derived from its WIT (package, interface,
// function), the ticking/ package links the top-level files, and
// theater-simple.wit is the shared contract verbatim.
func TestWITMatchesTheABITables(t *testing.T) {
	wit := filepath.Join(RepoRoot(t), "wit")
	read := func(path string) []byte {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	simple := read(filepath.Join(wit, "theater-simple.wit"))
	ticker := read(filepath.Join(wit, "troupe-ticker.wit"))
	if !bytes.Equal(read(filepath.Join(wit, "ticking", "troupe-ticker.wit")), ticker) ||
		!bytes.Equal(read(filepath.Join(wit, "ticking", "deps", "theater-simple.wit")), simple) {
		t.Error("wit/ticking does not link the top-level WIT files")
	}
	// CI checks out the requirements beside the repository.
	if shared, err := os.ReadFile(filepath.Join(RepoRoot(t), "..", "shared", "wit", "theater-simple.wit")); err == nil && !bytes.Equal(shared, simple) {
		t.Error("wit/theater-simple.wit is not the shared contract verbatim")
	}

	pkg := regexp.MustCompile(`(?m)^package ([a-z-]+:[a-z-]+);$`).FindSubmatch(ticker)
	iface := regexp.MustCompile(`(?m)^interface ([a-z-]+) \{$`).FindSubmatch(ticker)
	fn := regexp.MustCompile(`(?m)^\s+([a-z-]+): func\(state: option<list<u8>>, now-ms: u64\) -> result<tuple<option<list<u8>>>, string>;$`).FindSubmatch(ticker)
	if pkg == nil || iface == nil || fn == nil {
		t.Fatalf("troupe-ticker.wit lacks the package, the interface or tick's signature:\n%s", ticker)
	}
	export := string(pkg[1]) + "/" + string(iface[1]) + "#" + string(fn[1])
	if export != TickExport || "cabi_post_"+export != PostTickExport {
		t.Errorf("the WIT lowers to %s, the ABI tables say %s and %s", export, TickExport, PostTickExport)
	}
	if _, ok := ActorExports[TickExport]; !ok {
		t.Error("ActorExports lacks the tick export")
	}
	world := regexp.MustCompile(`(?s)world ticking-actor \{\s*import theater:simple/runtime;\s*export theater:simple/actor;\s*export ticker;\s*\}`)
	if !world.Match(ticker) {
		t.Error("troupe-ticker.wit lacks the ticking-actor world")
	}
	if !bytes.Contains(simple, []byte("init: func(state: option<list<u8>>, params: tuple<string>) -> result<tuple<option<list<u8>>>, string>;")) {
		t.Error("theater-simple.wit's init has another type than the one tick's result shares")
	}
}
