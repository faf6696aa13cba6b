package theater_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero/api"

	"github.com/troupe-dev/troupe/internal/abi"
)

// TestSourceDeclaresTheABITable reads the SDK's own source (this package
// and ticker/) and holds every //go:wasmimport and //go:wasmexport to the
// ABI table of internal/abi: the names, and the core signature the Go
// declaration lowers to. The SDK is built for wasip1 and cannot read the
// table; this test is what keeps it on it, including functions no test
// actor calls. (TestABIActorImportsEveryRuntimeFunctionWithItsExactSignature
// checks the compiled module as well.)
func TestSourceDeclaresTheABITable(t *testing.T) {
	imports := map[string]abi.Signature{}
	exports := map[string]abi.Signature{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() && (d.Name() == "testdata" || d.Name() == "internal") {
			if err == nil {
				err = filepath.SkipDir
			}
			return err
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Doc == nil {
				continue
			}
			for _, c := range fn.Doc.List {
				fields := strings.Fields(c.Text)
				switch {
				case len(fields) == 3 && fields[0] == "//go:wasmimport":
					imports[fields[1]+"."+fields[2]] = coreSignature(t, fset, fn)
				case len(fields) == 2 && fields[0] == "//go:wasmexport":
					exports[fields[1]] = coreSignature(t, fset, fn)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range abi.Imports {
		got, ok := imports[f.Module+"."+f.Name]
		if !ok {
			t.Errorf("the SDK does not import %s.%s", f.Module, f.Name)
			continue
		}
		if !got.Equal(f.Signature) {
			t.Errorf("the SDK imports %s.%s as %s, the table says %s", f.Module, f.Name, got, f.Signature)
		}
		delete(imports, f.Module+"."+f.Name)
	}
	for name := range imports {
		t.Errorf("the SDK imports %s, which is not in the ABI table", name)
	}
	for _, x := range abi.Exports {
		if x.Name == abi.Initialize.Name {
			continue // the Go toolchain exports it for -buildmode=c-shared
		}
		got, ok := exports[x.Name]
		if !ok {
			t.Errorf("the SDK does not export %s", x.Name)
			continue
		}
		if !got.Equal(x.Signature) {
			t.Errorf("the SDK exports %s as %s, the table says %s", x.Name, got, x.Signature)
		}
		delete(exports, x.Name)
	}
	for name := range exports {
		t.Errorf("the SDK exports %s, which is not in the ABI table", name)
	}
}

// coreSignature lowers a wasmimport/wasmexport declaration the way the Go
// compiler does: a string is (ptr, len), a pointer or 32-bit integer an
// i32, a 64-bit integer an i64, a float64 an f64.
func coreSignature(t *testing.T, fset *token.FileSet, fn *ast.FuncDecl) abi.Signature {
	t.Helper()
	lower := func(fl *ast.FieldList) []api.ValueType {
		var out []api.ValueType
		if fl == nil {
			return nil
		}
		for _, field := range fl.List {
			var vt []api.ValueType
			switch ty := field.Type.(type) {
			case *ast.StarExpr:
				vt = []api.ValueType{abi.I32}
			case *ast.Ident:
				switch ty.Name {
				case "string":
					vt = []api.ValueType{abi.I32, abi.I32}
				case "uint32", "int32", "uint8", "bool":
					vt = []api.ValueType{abi.I32}
				case "uint64", "int64":
					vt = []api.ValueType{abi.I64}
				case "float64":
					vt = []api.ValueType{abi.F64}
				}
			}
			if vt == nil {
				t.Fatalf("%s: %s: a parameter type the test cannot lower", fset.Position(fn.Pos()), fn.Name.Name)
			}
			for range max(1, len(field.Names)) {
				out = append(out, vt...)
			}
		}
		return out
	}
	return abi.Signature{Params: lower(fn.Type.Params), Results: lower(fn.Type.Results)}
}
