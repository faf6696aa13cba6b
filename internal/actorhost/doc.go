// Package actorhost loads, runs and supervises actors: one wazero runtime per
// process, one module instance per actor, with the runtime handler, WASI,
// per-actor limits and the actor's lifecycle (start, init, stop, restart).
package actorhost
