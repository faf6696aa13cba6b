// Package wasmcomponent recognizes WebAssembly components (the binaries
// wit-component, cargo-component, componentize-js and `wasm-tools component
// new` emit) and reduces a supported one to what Troupe's engine runs: the
// component's main core module, and a description of how each of its
// imports and exports is wired by the component's glue.
//
// Troupe does not run the Component Model. A component of the shapes these
// toolchains emit is a main core module that already speaks the canonical
// ABI, plus glue: a shim module that forwards calls through a table, a fixup
// module that fills the table (and whose start function runs the main
// module's _initialize), an optional wasi_snapshot_preview1 adapter, and a
// nested component that re-exports the lifted functions. Reduce parses only
// the parts of the binary needed to follow that glue, proves that every
// import of the main module ends at a canon lower of an imported interface
// function with the main module's own memory, realloc and UTF-8 (or at the
// preview1 adapter, which the host replaces by its native preview1), and
// that every export is a canon lift of the main module's export of the same
// name. Anything else is refused with an error that says what, never a
// panic: the bytes are hostile.
//
// docs/components.md describes the layouts this package supports and why
// Troupe reduces components instead of running them.
package wasmcomponent
