package wasmcomponent_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/internal/testutil"
	"github.com/troupe-dev/troupe/internal/wasmcomponent"
)

// section encodes a component section: id, size, content.
func section(id byte, content ...byte) []byte {
	return append([]byte{id, byte(len(content))}, content...)
}

func component(sections ...[]byte) []byte {
	b := []byte("\x00asm\x0d\x00\x01\x00")
	for _, s := range sections {
		b = append(b, s...)
	}
	return b
}

// TestUnsupportedShapes: what Reduce refuses says, first, that it is an
// unsupported component shape, then what; a malformed binary says where.
func TestUnsupportedShapes(t *testing.T) {
	wat := testutil.TestComponent(t, "wat-actor")
	tests := map[string]struct {
		b         []byte
		malformed bool
		want      string
	}{
		"nothing exported": {b: component(), want: "unsupported component shape: exports no function"},
		"a start function": {b: component(section(9, 0, 0, 0)), want: "unsupported component shape: a component start function"},
		"component values": {b: component(section(12, 0)), want: "unsupported component shape: component values"},
		// An inline core instance, then an alias of a core instance
		// out of it: the reducer reads only instances it can see built.
		"a core instance alias": {
			b:    component(section(2, 1, 1, 0), section(6, 1, 0, 0x12, 1, 0, 1, 'x')),
			want: "unsupported component shape: a core instance it neither instantiates nor builds",
		},
		"nested too deep": {
			b:    nest(10),
			want: "unsupported component shape: components nested more than 8 deep",
		},
		"an older draft":  {b: []byte("\x00asm\x0c\x00\x01\x00"), want: "unsupported component shape: component binary version 0x0c"},
		"cut short":       {b: wat[:len(wat)-3], malformed: true, want: "malformed component at byte"},
		"unknown section": {b: component(section(42)), malformed: true, want: "unknown section id 42"},
		// The context of a refusal deep in the glue comes after the
		// prefix: the wat actor with its init lifted under another
		// name is refused naming the export.
		"an export lifting another name": {
			b:    renameCoreExport(t, wat, "theater:simple/actor#init", "theater:simple/actor#tini"),
			want: "unsupported component shape: export theater:simple/actor#init lifts the core export \"theater:simple/actor#tini\"",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := wasmcomponent.Reduce(tc.b)
			if err == nil {
				t.Fatal("reduced")
			}
			var m *wasmcomponent.MalformedError
			if tc.malformed != errors.As(err, &m) || tc.malformed == errors.Is(err, wasmcomponent.ErrUnsupported) {
				t.Errorf("malformed: %v, unsupported: %v; want malformed %v", errors.As(err, &m), errors.Is(err, wasmcomponent.ErrUnsupported), tc.malformed)
			}
			if !strings.Contains(err.Error(), tc.want) || (!tc.malformed && !strings.HasPrefix(err.Error(), tc.want)) {
				t.Errorf("error %q, want it to start with %q", err, tc.want)
			}
		})
	}
}

// nest is n components, each nested in the next.
func nest(n int) []byte {
	b := component()
	for i := 0; i < n; i++ {
		b = component(append([]byte{4}, append(uleb(len(b)), b...)...))
	}
	return b
}

func uleb(n int) []byte {
	var b []byte
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if n == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// renameCoreExport replaces, in the component's bytes, every length-prefixed
// name from with to (the same length), e.g. the main module's export and the
// glue's alias of it.
func renameCoreExport(t *testing.T, b []byte, from, to string) []byte {
	t.Helper()
	if len(from) != len(to) {
		t.Fatal("names of different lengths")
	}
	out := []byte(strings.ReplaceAll(string(b), string(rune(len(from)))+from, string(rune(len(to)))+to))
	if string(out) == string(b) {
		t.Fatalf("%q is not in the component", from)
	}
	return out
}
