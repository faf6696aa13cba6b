package wasmcomponent_test

import (
	"testing"

	"github.com/troupe-dev/troupe/internal/testutil"
	"github.com/troupe-dev/troupe/internal/wasmcomponent"
)

// BenchmarkReduce measures reducing a component: what a component adds to
// its compile (a cold one takes seconds; a warm one, from the compilation
// cache, hundreds of milliseconds for a componentize-js actor).
func BenchmarkReduce(b *testing.B) {
	comps := map[string]func(b *testing.B) []byte{
		"wat-actor": func(b *testing.B) []byte { return testutil.TestComponent(b, "wat-actor") },
		"js-hello":  func(b *testing.B) []byte { return testutil.BuiltComponent(b, "js-hello") },
	}
	for _, name := range []string{"wat-actor", "js-hello"} {
		b.Run(name, func(b *testing.B) {
			comp := comps[name](b)
			b.SetBytes(int64(len(comp)))
			b.ReportAllocs()
			for range b.N {
				if _, err := wasmcomponent.Reduce(comp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
