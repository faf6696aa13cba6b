// Command counter is the receiving half of the counter pair: it keeps a
// count in its state, so the count survives restarts, and answers the
// requests of other actors (examples/counter-client) or of
// `troupe request counter ...`.
//
// Requests: "get" answers {"count":N}; "add N" adds N (an integer, may be
// negative) and answers the new count. Anything else is answered with
// {"error": ...} and leaves the count alone: a bad request is the
// requester's mistake, not a reason to fail the counter. A sent message
// (handle-send) "add N" adds N without an answer.
package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/troupe-dev/troupe/sdk/theater"
	_ "github.com/troupe-dev/troupe/sdk/theater/messages"
)

// state is what the counter keeps between calls and runs.
type state struct {
	Count int64 `json:"count"`
}

func init() {
	theater.OnInit(func(raw []byte, hasState bool, _ string) ([]byte, error) {
		s, err := load(raw, hasState)
		if err != nil {
			return nil, err
		}
		if err := theater.Logf(theater.LevelInfo, "counter ready at %d", s.Count); err != nil {
			return nil, err
		}
		return json.Marshal(s)
	})
	theater.OnRequest(func(raw []byte, hasState bool, requestID string, data []byte) ([]byte, []byte, error) {
		s, err := load(raw, hasState)
		if err != nil {
			return nil, nil, err
		}
		resp, err := s.apply(string(data))
		if err != nil {
			out, _ := json.Marshal(map[string]string{"error": err.Error()})
			return raw, out, nil
		}
		if err := theater.Logf(theater.LevelInfo, "request %s: %s -> %d", requestID, strings.TrimSpace(string(data)), s.Count); err != nil {
			return nil, nil, err
		}
		next, err := json.Marshal(s)
		return next, resp, err
	})
	theater.OnSend(func(raw []byte, hasState bool, msg []byte) ([]byte, error) {
		s, err := load(raw, hasState)
		if err != nil {
			return nil, err
		}
		if _, err := s.apply(string(msg)); err != nil {
			// A sent message has nobody to answer: say so in the log.
			return raw, theater.Logf(theater.LevelWarn, "ignored message: %v", err)
		}
		return json.Marshal(s)
	})
}

func main() {}

// load reads the state; none (the first run without initialState) is 0.
func load(raw []byte, hasState bool) (*state, error) {
	s := &state{}
	if hasState && len(raw) > 0 {
		if err := json.Unmarshal(raw, s); err != nil {
			return nil, fmt.Errorf("the saved state is not the counter's: %w", err)
		}
	}
	return s, nil
}

// apply runs one command on s and returns the answer.
func (s *state) apply(cmd string) ([]byte, error) {
	f := strings.Fields(cmd)
	switch {
	case len(f) == 1 && f[0] == "get":
	case len(f) == 2 && f[0] == "add":
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("add %q: not an integer", f[1])
		}
		s.Count += n
	default:
		return nil, fmt.Errorf("unknown command %q: want get or add N", cmd)
	}
	return json.Marshal(map[string]int64{"count": s.Count})
}
