// Package version reports the build's version: the one string that
// get-theater-version returns to actors and `troupe version` prints.
package version
