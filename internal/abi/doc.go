// Package abi is the guest contract's core-wasm ABI: module and export
// names, core signatures, result-area layouts — one table that the runtime
// handler, the engine, the test fakes and the drift tests read.
//
// The contract itself is wit/theater-simple.wit, wit/theater-message.wit
// and wit/troupe-ticker.wit;
// this table is their canonical-ABI lowering, the way wit-bindgen lowers
// them, written out once. A test parses the WIT files, lowers every function
// and compares the result with the table, so the two cannot drift; the
// runtime handler defines its host functions from Imports, the engine
// validates a module's exports against Exports, and the SDK and the fake
// runtime of internal/testutil are checked against both.
//
// Adding a function to the contract is adding a row here (an Import, or an
// Export and its PostReturn) beside its WIT, and its implementation.
package abi
