// Package fsync makes what was written to a file, or to a directory's
// entries, durable: the two calls the chain and the actor directory's
// small files order their writes with.
package fsync
