// Command counter-client is the asking half of the counter pair: every
// request it gets is passed on to the counter actor (COUNTER, default
// "counter") with theater.Request, and answered with the counter's answer
// and how many requests this client has passed on, across restarts.
// A sent message is passed on with theater.Send.
package main

import (
	"encoding/json"
	"fmt"

	"github.com/troupe-dev/troupe/sdk/theater"
	_ "github.com/troupe-dev/troupe/sdk/theater/messages"
)

// state counts the requests passed on.
type state struct {
	Asked int64 `json:"asked"`
}

// answer is the client's response: the counter's, with the client's count.
type answer struct {
	Asked   int64           `json:"asked"`
	Counter json.RawMessage `json:"counter"`
}

func target() string {
	if t, ok := theater.Getenv("COUNTER"); ok && t != "" {
		return t
	}
	return "counter"
}

func init() {
	theater.OnInit(func(raw []byte, hasState bool, _ string) ([]byte, error) {
		s, err := load(raw, hasState)
		if err != nil {
			return nil, err
		}
		if err := theater.Logf(theater.LevelInfo, "asks %s; %d requests passed on so far", target(), s.Asked); err != nil {
			return nil, err
		}
		return json.Marshal(s)
	})
	theater.OnRequest(func(raw []byte, hasState bool, _ string, data []byte) ([]byte, []byte, error) {
		s, err := load(raw, hasState)
		if err != nil {
			return nil, nil, err
		}
		resp, err := theater.Request(target(), data)
		if err != nil {
			// The counter is missing, failed or too slow: the requester
			// hears why, the client lives on.
			out, _ := json.Marshal(map[string]string{"error": fmt.Sprintf("asking %s: %v", target(), err)})
			return raw, out, nil
		}
		s.Asked++
		if !json.Valid(resp) {
			resp, _ = json.Marshal(string(resp))
		}
		out, err := json.Marshal(answer{Asked: s.Asked, Counter: resp})
		if err != nil {
			return nil, nil, err
		}
		next, err := json.Marshal(s)
		return next, out, err
	})
	theater.OnSend(func(raw []byte, _ bool, msg []byte) ([]byte, error) {
		if err := theater.Send(target(), msg); err != nil {
			return raw, theater.Logf(theater.LevelWarn, "passing a message on to %s: %v", target(), err)
		}
		return raw, nil
	})
}

func main() {}

func load(raw []byte, hasState bool) (*state, error) {
	s := &state{}
	if hasState && len(raw) > 0 {
		if err := json.Unmarshal(raw, s); err != nil {
			return nil, fmt.Errorf("the saved state is not the client's: %w", err)
		}
	}
	return s, nil
}
