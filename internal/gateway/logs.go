package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/troupe-dev/troupe/internal/msgroute"
	"github.com/troupe-dev/troupe/internal/msgwire"
)

// LogVerb is the verb a caller needs on the Actor to read its logs: a
// verb of its own (like request and send), so that reading an actor's
// logs is granted apart from reading or messaging it.
const LogVerb = "logs"

// LogSource opens the log stream of the Actor ns/name: JSON lines of
// msgwire.LogRecord. Its errors are the message protocol's, as a
// Deliverer's.
type LogSource interface {
	Logs(ctx context.Context, ns, name string, q msgwire.LogQuery) (io.ReadCloser, error)
}

// Logs implements LogSource through the router: the actor's host.
func (x Routed) Logs(ctx context.Context, ns, name string, q msgwire.LogQuery) (io.ReadCloser, error) {
	return x.Router.Logs(ctx, types.NamespacedName{Namespace: ns, Name: name}, q)
}

var _ LogSource = Routed{Router: (*msgroute.Router)(nil)}

// logs serves GET .../namespaces/{ns}/actors/{name}/log: the caller needs
// LogVerb on the Actor; the host's lines are passed through as they come,
// flushed, each bounded by msgwire.MaxLogLineBytes. The API server treats
// a "log" subresource as long-running, so a followed stream is not cut at
// its request timeout.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	begin := time.Now()
	ns, name := r.PathValue("ns"), r.PathValue("name")
	result := "Internal"
	// Counted when answered: a stream's own length is the caller's.
	defer func() {
		if result != "" {
			s.Metrics.request(msgwire.OpLog, result, time.Since(begin))
		}
	}()
	fail := func(status int, reason, msg string) {
		result = reason
		writeError(w, status, reason, msg)
	}
	u, ok := s.authenticate(w, r)
	if !ok {
		result = "Unauthenticated"
		return
	}
	if msg := invalidTarget(ns, name); msg != "" {
		fail(http.StatusBadRequest, "BadRequest", msg)
		return
	}
	q, err := msgwire.ParseLogQuery(r.URL.RawQuery)
	if err != nil {
		fail(http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	actx, cancel := context.WithTimeout(r.Context(), s.maxTimeout())
	dec, err := s.Authz.Authorize(actx, u, LogVerb, ns, name)
	cancel()
	if err != nil {
		s.Log.Error(err, "authorization failed", "user", u.Name, "op", msgwire.OpLog, "namespace", ns, "actor", name)
		fail(http.StatusServiceUnavailable, "AuthorizationUnavailable", "could not check the caller's access: "+err.Error())
		return
	}
	if !dec.Allowed {
		msg := fmt.Sprintf("%s may not read the logs of actor %s/%s: it needs verb %q on resource %q in API group %q in namespace %q", u.Name, ns, name, LogVerb, ActorResource, ActorGroup, ns)
		if dec.Reason != "" {
			msg += " (" + dec.Reason + ")"
		}
		s.Log.V(1).Info("refused an unauthorized request", "user", u.Name, "op", msgwire.OpLog, "namespace", ns, "actor", name)
		fail(http.StatusForbidden, "Forbidden", msg)
		return
	}
	if s.LogSource == nil {
		fail(http.StatusNotFound, "NotFound", "this gateway serves no logs")
		return
	}
	body, err := s.LogSource.Logs(r.Context(), ns, name, q)
	if err != nil {
		status, reason := msgwire.StatusOf(err)
		if status == http.StatusInternalServerError {
			s.Log.Error(err, "opening a log stream failed", "namespace", ns, "actor", name)
		}
		result = reason
		msgwire.WriteError(w, err)
		return
	}
	defer body.Close()
	s.Metrics.request(msgwire.OpLog, "OK", time.Since(begin))
	result = ""
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if err := copyLines(w, body); err != nil && r.Context().Err() == nil {
		s.Log.V(1).Info("a log stream ended early", "namespace", ns, "actor", name, "error", err.Error())
	}
}

// copyLines copies JSON lines from src to w, flushing whenever no more is
// buffered: a line waits for nothing. A line over the bound ends the copy.
func copyLines(w http.ResponseWriter, src io.Reader) error {
	br := bufio.NewReaderSize(src, 64<<10)
	flusher, _ := w.(http.Flusher)
	for {
		// A line within br's buffer costs no copy; a longer one is
		// gathered (rare: a message near its bound).
		line, err := msgwire.ReadLogLine(br, nil)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := w.Write(line); err != nil {
			return err
		}
		if br.Buffered() == 0 && flusher != nil {
			flusher.Flush()
		}
	}
}
