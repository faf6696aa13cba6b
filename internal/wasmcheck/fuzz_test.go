package wasmcheck_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/troupe-dev/troupe/internal/testutil"
	"github.com/troupe-dev/troupe/internal/wasmcheck"
)

// FuzzCheck: Check never panics, answers the same twice, returns only its
// own errors, and what it accepts stays within the limits it was given;
// wazero's decoder and validator then survive what it accepted (no
// allocation sized from a count that the bytes do not hold). The corpus
// in testdata/fuzz/FuzzCheck holds real modules and the decoder bombs.
func FuzzCheck(f *testing.F) {
	f.Add(testutil.FuncModule(testutil.BrTable(20), 3))
	f.Add(testutil.FuncModule(testutil.NestedLoops(10), 0))
	f.Add(module(section(6, 1, 0x7f, 0, 0x41, 0, 0x0b), section(7, 1, 1, 'g', 3, 0)))
	small := wasmcheck.Default
	small.Blocks, small.Nesting, small.BranchTargets, small.BranchTable, small.Locals = 16, 8, 16, 8, 16
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		s, err := wasmcheck.Check(in, small)
		if !bytes.Equal(in, orig) {
			t.Fatal("Check modified its input")
		}
		_, again := wasmcheck.Check(in, small)
		if (err == nil) != (again == nil) || (err != nil && err.Error() != again.Error()) {
			t.Fatalf("two answers: %v, then %v", err, again)
		}
		if err != nil {
			var ce *wasmcheck.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T %v", err, err)
			}
			return
		}
		if s.Blocks.Value > uint64(small.Blocks) || s.Nesting.Value > uint64(small.Nesting) || s.Locals.Value > uint64(small.Locals) ||
			s.BranchTargets.Value > uint64(small.BranchTargets) || s.BranchTable.Value > uint64(small.BranchTable) {
			t.Fatalf("accepted past a bound: %+v", s)
		}
		if m, err := rt.CompileModule(ctx, wasmcheck.BoundTables(in, small.TableElements)); err == nil {
			_ = m.Close(ctx)
		}
	})
}
