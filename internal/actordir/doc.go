// Package actordir owns the layout of an actor's directory on disk: where a
// host keeps each actor under its data directory, the names of the files
// in it (the chain, the saved state, the identity, the host's run record,
// old chains moved aside), and the reading and writing of the small ones.
// The engine (internal/actorhost), the host (internal/host) and the CLI go
// through it, so that the layout is written down once.
//
// Every format in the directory carries a version, and every reader here
// refuses a version it does not know with a *VersionError naming the file,
// the version found and the versions it reads: an older Troupe must not
// misread, or overwrite, what a newer one wrote. Files written before
// formats were versioned (Troupe v0.1.0) read as version 1.
package actordir
