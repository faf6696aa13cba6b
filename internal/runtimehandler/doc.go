// Package runtimehandler implements the host functions of the
// theater:simple/runtime interface for wazero: it decodes the canonical-ABI
// arguments a guest passes, validates them, serves the call and records it
// in the actor's state chain, with the secret values it served scrubbed from
// whatever the guest hands back.
package runtimehandler
