// Package chain is an actor's state chain: an append-only, hash-linked log of
// every call the actor made, stored durably per actor, verifiable event by
// event, and exportable as JSON lines.
package chain
