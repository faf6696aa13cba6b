// Package cmdutil holds what Troupe's cluster binaries (manager, host,
// gateway) set up the same way: their structured logger from the
// --log-level and --log-format flags, and their connection to the API
// server.
package cmdutil
