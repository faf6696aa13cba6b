// Package memlimit finds how much memory this process may use (its cgroup's
// limit, cgroup v2 or v1) and how much it uses (its resident set, and what
// the Go runtime holds), so that the host can size its actors' memory
// budget and tell the Go runtime its soft limit. It reads files only; it
// decides nothing.
package memlimit
