// Package wasmcheck bounds what compiling a WebAssembly module can cost the
// host, before wazero sees it.
//
// wazero's compiler is superlinear in some shapes of a single function (the
// number of blocks, the targets of one branch, nesting), checks its context
// only between functions, and its decoder sizes allocations from counts the
// module claims (a 30-byte module claiming four billion locals, globals or
// names exhausts the process). Check reads the whole module once with a
// bounded parser: every count and length is checked against the bytes that
// remain and against Limits, and every function body is decoded instruction
// by instruction for its blocks, nesting, branch targets and locals. It
// allocates nothing proportional to a claimed count, and its own cost is
// linear in the module's size.
//
// BoundTables is the one rewrite the host makes before compiling: it gives
// every table a maximum (see MaxTableElements).
//
// The decoder follows what wazero's decoder and validator accept with its
// default (WebAssembly 2.0) features, not a newer proposal; a module it
// cannot read is refused as malformed, never passed on unchecked.
package wasmcheck
