// Package asyncwriter passes log output to a destination that may be slow,
// blocked or gone (a terminal piped into a reader that never reads, a
// closed pipe, a container runtime that stalls) without ever holding up the
// writer: a guest's log call must not wait on the host's log output past
// its deadline. Lines queue up to a bound and are written from a goroutine
// of their own; past the bound they are dropped, counted, and the count is
// written where they would have been. A failed write (EPIPE) is reported
// once, so the owner can stop gracefully.
package asyncwriter
