// Package diskbudget bounds what actors may write to their node's disk:
// chain appends and saved-state writes.
//
// Every actor has its own budget (Actor): a byte rate and an event rate,
// each a token bucket with a burst, and a size budget for its chain on the
// node. The actors of one host share a node-wide budget (Node): a byte and
// an event rate that reservations take in arrival order, and a free-space
// watermark on the filesystem of the data directory, below which appends
// are refused.
//
// A host call that appends waits for budget within its call's deadline
// (Admit): a flooder is throttled, and ends up failing its call with a
// *Error rather than being told that an append it was refused succeeded.
// Records the host writes on its own account (lifecycle events) are charged
// but never refused (Charge): the budget goes into debt, which the actor's
// next appends, and its next tick, wait off.
package diskbudget
