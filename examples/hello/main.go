// Command hello is the smallest useful actor: it greets with its id and name,
// takes the greeting from the GREETING variable, records an event, and counts
// its runs in its state, so the count survives restarts.
package main

import (
	"encoding/json"
	"fmt"

	"github.com/troupe-dev/troupe/sdk/theater"
)

// state is what hello saves between runs.
type state struct {
	Count int `json:"count"`
}

func init() {
	theater.OnInit(run)
}

// main never runs: the actor is a reactor, and the host calls init.
func main() {}

func run(saved []byte, hasState bool, actorID string) ([]byte, error) {
	var s state
	if hasState && len(saved) > 0 {
		if err := json.Unmarshal(saved, &s); err != nil {
			return nil, fmt.Errorf("hello: saved state %q is not {\"count\": N}: %w", saved, err)
		}
	}
	s.Count++

	greeting, ok := theater.Getenv("GREETING")
	if !ok || greeting == "" {
		greeting = "Hello"
	}
	name := theater.ActorName()
	if err := theater.Info(fmt.Sprintf("%s from %s (%s), run #%d", greeting, name, actorID, s.Count)); err != nil {
		return nil, err
	}

	event, err := json.Marshal(map[string]any{"greeting": greeting, "name": name, "count": s.Count})
	if err != nil {
		return nil, fmt.Errorf("hello: encoding the greeted event: %w", err)
	}
	if err := theater.RecordEvent("greeted", event); err != nil {
		return nil, err
	}
	return json.Marshal(s)
}
