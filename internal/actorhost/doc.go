// Package actorhost loads, runs and supervises actors: one wazero runtime per
// process, one module instance per actor, with the runtime handler, WASI,
// per-actor limits and the actor's life (start, init, ticks, stop).
//
// engine.go compiles and validates components against the ABI table
// (internal/abi); actor.go holds the Actor and what it reports; start.go
// opens its directory and chain, instantiates and calls init; call.go is the
// mechanics of a call into the guest, with callState, the one
// state-in/result-out call that init and tick (and later calls of that
// shape) go through; tick.go the tick loop; lifecycle.go how a run ends.
// A run ends for good: the next one is a new Start on the same directory,
// which resumes from the saved state and continues the chain.
package actorhost
