// Command troupe is Troupe's command-line tool: it runs an actor locally
// without a cluster (`troupe run`) and reads and verifies state chains
// (`troupe chain`).
package main
