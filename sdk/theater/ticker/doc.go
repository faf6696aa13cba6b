// Package ticker links the optional export troupe:actor/ticker#tick (and its
// cabi_post) into a Go actor, making the host call the function registered
// with theater.OnTick every tick interval once init has returned. Import it
// for its side effect:
//
//	import _ "github.com/troupe-dev/troupe/sdk/theater/ticker"
//
// It is a package of its own because a //go:wasmexport is always linked:
// were the export in package theater, every Go actor would export tick and
// be called periodically, ticking or not. Outside GOOS=wasip1 it is empty.
package ticker
