// Package wasmimage moves a WebAssembly module's data segments out of the
// module and into an image of its initial linear memory.
//
// A module built by Go (GOOS=wasip1) carries tens of thousands of active
// data segments (examples/hello: 37,556, 1.2 MB). wazero copies every one
// into each instance's linear memory at instantiation, evaluates each
// offset expression, and keeps a []byte header per segment per instance
// for memory.init, although no segment can be named after instantiation
// when the module has no DataCount section (memory.init and data.drop
// require it). Split builds, once per module, the memory those segments
// produce, and the same module without its data section: the engine maps
// the image into each instance's memory before the guest runs (shared
// copy-on-write on Linux), and wazero has nothing to copy or keep.
//
// Split accepts only the modules for which the two are equivalent: one
// memory defined by the module (none imported), 32-bit and unshared; no
// DataCount section; every segment active, for memory 0, at an i32.const
// offset, and inside the declared minimum memory. Anything else, or any
// byte it can't read, and it answers ok=false: the caller keeps the module
// unchanged, so a segment out of bounds still fails instantiation as
// before. Its parsing is bounded by the input and never panics (fuzzed).
package wasmimage
