// Package archive keeps an actor's chain and state in S3-compatible object
// storage (internal/objstore), so that they outlive the node that wrote
// them: sealed chain segments and the state belonging to each segment's
// end, a manifest per epoch that says which of them make up the history
// (its newest segments inline, the older ones in a chain of immutable
// pages, so that a long-lived epoch's manifest stays bounded), and a
// name -> id index. It writes (Claim, Writer.Append), reads back and
// verifies a whole history across epochs (Resolve, Verify), and restores
// the latest state checked against the digest the chain records (Restore).
//
// The layout and the fencing rules are in docs/archive.md. In short: keys
// carry the actor's id (never its name) and the epoch; objects are
// uploaded before the manifest that names them; the highest epoch's
// manifest wins, and it names the last segment it accepted from the epoch
// before, so a host that lost its assignment can never make its late writes
// part of the history, on any store, without conditional writes.
package archive
