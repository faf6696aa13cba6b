// Package actorspec turns an Actor's spec into the engine's settings, the
// one place where `troupe run` and the host agree on what a spec means.
package actorspec
