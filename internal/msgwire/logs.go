package msgwire

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// An actor's logs: the log records of its chain (LogEvent), served as JSON
// lines by a host's peer endpoint (LogPattern) and, through the gateway,
// by the aggregated API; `troupe logs` prints them. The same query
// parameters and the same LogRecord serve all three.

// OpLog is the last element of the log path.
const OpLog = "log"

// LogPattern is the http.ServeMux pattern of a host's log endpoint.
const LogPattern = "GET /v1/namespaces/{ns}/actors/{name}/log"

// Log levels, least severe first: a query's Level is a minimum.
var logLevels = []string{"debug", "info", "warn", "error"}

// LogLevelRank is level's rank (debug 0 ... error 3) and whether it is
// one of the four levels (case-sensitive, as the chain records them).
func LogLevelRank(level string) (int, bool) {
	for i, l := range logLevels {
		if l == level {
			return i, true
		}
	}
	return 0, false
}

// Bounds of a log stream.
const (
	// MaxLogTail bounds a query's tail.
	MaxLogTail = 10000
	// MaxLogMessageBytes bounds a record's message on the wire: a longer
	// one (an actor may log up to 1 MiB when its maxLogBytes allows) is
	// cut at a rune boundary and Truncated set.
	MaxLogMessageBytes = 64 << 10
	// MaxLogLineBytes bounds one JSON line a reader accepts: the message's
	// bound escaped (6 bytes a rune at worst) and the other fields.
	MaxLogLineBytes = 6*MaxLogMessageBytes + 4096
	// maxLogQuery bounds the raw query a host or the gateway parses.
	maxLogQuery = 1024
)

// LogRecord is one log record of an actor, a line of the log stream.
type LogRecord struct {
	// Seq is the event's position in the actor's chain: a follower
	// resumes after the last one it saw (LogQuery.After).
	Seq uint64 `json:"seq"`
	// Time is when the actor logged it.
	Time time.Time `json:"time"`
	// Level is debug, info, warn or error.
	Level string `json:"level"`
	// Message is what the actor logged, with the values of its Secrets
	// already redacted in the chain.
	Message string `json:"message"`
	// Source is "wasi" for a line the actor wrote to stdout or stderr, ""
	// for a log call.
	Source string `json:"source,omitempty"`
	// Error is set for a log call the runtime refused (too long, bad
	// level, not UTF-8): Message is then empty.
	Error string `json:"error,omitempty"`
	// Truncated: Message was cut to MaxLogMessageBytes.
	Truncated bool `json:"truncated,omitempty"`
	// ActorID and Epoch are the run's; a record read from the archive
	// (one the serving host does not hold) has the epoch that wrote it.
	ActorID string `json:"actorID"`
	Epoch   int64  `json:"epoch"`
	// EndOfStream, on a line of its own, says why a host ended a followed
	// stream ("the run ended", "the actor moved"); it is no record, and
	// its Seq is the last chain event the host read. A reader reconnects
	// after the last record's Seq.
	EndOfStream string `json:"endOfStream,omitempty"`
	// StreamError, on the last line, says why the host could not read on
	// (a damaged chain); it is no record.
	StreamError string `json:"streamError,omitempty"`
}

// TruncateMessage cuts m to MaxLogMessageBytes at a rune boundary.
func TruncateMessage(m string) (string, bool) {
	if len(m) <= MaxLogMessageBytes {
		return m, false
	}
	end := MaxLogMessageBytes
	for end > 0 && !utf8.RuneStart(m[end]) {
		end--
	}
	return m[:end], true
}

// LogQuery selects an actor's log records.
type LogQuery struct {
	// After: only records with a greater seq (HasAfter set).
	After    uint64
	HasAfter bool
	// Follow keeps the stream open for new records.
	Follow bool
	// Level is the minimum level; "" is every level.
	Level string
	// Since: only records logged at or after it; zero is no bound.
	Since time.Time
	// Tail: only the last Tail records that match (HasTail set; 0 is
	// none: a follower then sees only what comes).
	Tail    int
	HasTail bool
}

// Values is q as query parameters.
func (q LogQuery) Values() url.Values {
	v := url.Values{}
	if q.HasAfter {
		v.Set("after", strconv.FormatUint(q.After, 10))
	}
	if q.Follow {
		v.Set("follow", "1")
	}
	if q.Level != "" {
		v.Set("level", q.Level)
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if q.HasTail {
		v.Set("tail", strconv.Itoa(q.Tail))
	}
	return v
}

// ErrBadLogQuery marks a query ParseLogQuery refused.
var ErrBadLogQuery = errors.New("bad log query")

// ParseLogQuery reads a log query (after, follow, level, since, tail) from
// a raw URL query. Unknown parameters are refused, so a typo is not
// silently a query for everything; every error wraps ErrBadLogQuery.
func ParseLogQuery(raw string) (LogQuery, error) {
	var q LogQuery
	bad := func(format string, args ...any) (LogQuery, error) {
		return LogQuery{}, fmt.Errorf("%w: %s", ErrBadLogQuery, fmt.Sprintf(format, args...))
	}
	if len(raw) > maxLogQuery {
		return bad("the query is over %d bytes", maxLogQuery)
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return bad("%s", truncate(err.Error()))
	}
	for k, vs := range vals {
		if len(vs) != 1 {
			return bad("parameter %q given %d times", truncate(k), len(vs))
		}
		v := vs[0]
		switch k {
		case "after":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return bad("after=%q: want a chain seq (a non-negative integer)", truncate(v))
			}
			q.After, q.HasAfter = n, true
		case "follow":
			switch v {
			case "1", "true":
				q.Follow = true
			case "0", "false", "":
			default:
				return bad("follow=%q: want 1 or 0", truncate(v))
			}
		case "level":
			if _, ok := LogLevelRank(v); !ok {
				return bad("level=%q: want one of %s", truncate(v), strings.Join(logLevels, ", "))
			}
			q.Level = v
		case "since":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return bad("since=%q: want an RFC 3339 time", truncate(v))
			}
			q.Since = t
		case "tail":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > MaxLogTail {
				return bad("tail=%q: want a count from 0 to %d", truncate(v), MaxLogTail)
			}
			q.Tail, q.HasTail = n, true
		default:
			return bad("unknown parameter %q (after, follow, level, since, tail)", truncate(k))
		}
	}
	return q, nil
}

// Matches reports whether rec passes q's level and since filters (After
// and Tail are the reader's).
func (q LogQuery) Matches(rec *LogRecord) bool {
	if q.HasAfter && rec.Seq <= q.After {
		return false
	}
	if q.Level != "" {
		min, _ := LogLevelRank(q.Level)
		// A level the runtime refused is no level: shown whatever the
		// minimum, since it may have meant any.
		r, ok := LogLevelRank(rec.Level)
		if ok && r < min {
			return false
		}
	}
	if !q.Since.IsZero() && rec.Time.Before(q.Since) {
		return false
	}
	return true
}

// LogPath is the host's log path of the Actor namespace/name.
func LogPath(namespace, name string) string {
	return PeerPath(namespace, name, OpLog)
}

// Logs opens the log stream of namespace/name on the host at endpoint,
// which must run it at epoch (else NotHere, as for a delivery). The caller
// reads JSON lines (LogRecord) from the body and closes it; the stream
// lasts as long as ctx (no SendTimeout: a followed stream is long-lived;
// the HTTP/2 pings notice a dead host). Errors as Deliver's.
func (c *Client) Logs(ctx context.Context, endpoint string, epoch int64, namespace, name string, q LogQuery) (io.ReadCloser, error) {
	u := strings.TrimSuffix(endpoint, "/") + LogPath(namespace, name)
	if qs := q.Values().Encode(); qs != "" {
		u += "?" + qs
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("logs of %s/%s: %w", namespace, name, err)
	}
	req.Header.Set(HeaderEpoch, strconv.FormatInt(epoch, 10))
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("logs of %s/%s at %s: %w", namespace, name, endpoint, ctx.Err())
		}
		// A GET changes nothing: whatever happened, it may be tried again.
		return nil, fmt.Errorf("logs of %s/%s at %s: %w: %w", namespace, name, endpoint, ErrNotSent, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, DecodeError(resp.StatusCode, body)
	}
	return resp.Body, nil
}

// ErrLogLineTooLong is a log stream's line over MaxLogLineBytes.
var ErrLogLineTooLong = fmt.Errorf("a log stream's line is over %d bytes", MaxLogLineBytes)

// ReadLogLine reads the next line of a log stream from br, newline
// included, into buf's storage (the line is valid until the next call
// with the same buf). A line over MaxLogLineBytes is ErrLogLineTooLong;
// a last line without its newline was cut short and is io.EOF, as the
// end of the stream is: every line returned is whole.
func ReadLogLine(br *bufio.Reader, buf []byte) ([]byte, error) {
	buf = buf[:0]
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > MaxLogLineBytes {
			return nil, ErrLogLineTooLong
		}
		switch {
		case err == nil:
			if len(buf) == 0 {
				return chunk, nil
			}
			return append(buf, chunk...), nil
		case errors.Is(err, bufio.ErrBufferFull):
			buf = append(buf, chunk...)
		default:
			return nil, err
		}
	}
}
