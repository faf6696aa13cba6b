package gateway

import (
	"net/http"

	"github.com/troupe-dev/troupe/internal/msgwire"
)

// writeError answers a refusal of the gateway's own (401, 403, a bad
// request) with the message protocol's JSON error body, as a host's and
// troupe run's socket answer theirs: one client reads them all.
func writeError(w http.ResponseWriter, status int, reason, msg string) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	msgwire.WriteReason(w, status, reason, msg)
}
