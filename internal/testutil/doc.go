// Package testutil helps tests across Troupe use its guest actors: it builds
// the Go examples as wasip1 reactors, loads the hand-written test actors,
// checks a module against the guest ABI (internal/abi), and runs actors
// (Guest) under a host: FakeRuntime, a small independent fake of the
// runtime handler that records what the guest does, or the real handler,
// which a test compares the fake with.
package testutil
