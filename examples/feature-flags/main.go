// Command feature-flags is the seed's feature-flags use case: a feature is on
// when the variable FEATURE_<NAME> is true, yes or 1 (any case). The actor
// handles requests down the new or the old UI path accordingly.
//
// init decides once, and logs and records a "feature_path" event saying
// which path it took. The actor is a ticking actor (it imports package
// ticker and registers OnTick): on every tick it reads the flag again, and
// when the decision changes it logs and records another feature_path event.
// The variables come from the Actor's env (here, a ConfigMap through envFrom
// with the FEATURE_ prefix), which the host serves live, so an edit of the
// ConfigMap reaches the running actor at its next tick, without a restart.
//
// It also answers requests (troupe request feature-flags ANYTHING, or
// another actor's theater.Request): each reads the flag afresh and is
// answered down the path it selects, {"feature":"new_ui","enabled":...,
// "path":...,"page":...}, so an edit of the flag changes the answers at
// once, without a restart. A sent message is handled the same way, with
// nobody to answer.
//
// The state is the path in force ("new-ui" or "old-ui"), so the chain
// records every change of decision as a change of state.
package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/troupe-dev/troupe/sdk/theater"
	_ "github.com/troupe-dev/troupe/sdk/theater/messages"
	_ "github.com/troupe-dev/troupe/sdk/theater/ticker"
)

// feature is the flag this actor consults.
const feature = "new_ui"

// Paths a request can take; the state holds the one in force.
const (
	pathNew = "new-ui"
	pathOld = "old-ui"
)

func init() {
	theater.OnInit(func([]byte, bool, string) ([]byte, error) {
		// Decide afresh: the flag may have changed while the actor was down.
		return decide(isFeatureEnabled(feature), "init")
	})
	theater.OnTick(func(state []byte, hasState bool, _ time.Time) ([]byte, error) {
		return decideIfChanged(state, hasState, isFeatureEnabled(feature), "tick")
	})
	theater.OnRequest(func(state []byte, hasState bool, _ string, _ []byte) ([]byte, []byte, error) {
		newUI := isFeatureEnabled(feature)
		next, err := decideIfChanged(state, hasState, newUI, "request")
		if err != nil {
			return nil, nil, err
		}
		resp, err := json.Marshal(map[string]any{"feature": feature, "enabled": newUI, "path": pathFor(newUI), "page": render(newUI)})
		return next, resp, err
	})
	theater.OnSend(func(state []byte, hasState bool, _ []byte) ([]byte, error) {
		return decideIfChanged(state, hasState, isFeatureEnabled(feature), "message")
	})
}

// decideIfChanged reports a change of path (as a tick does) and keeps the
// state when there is none.
func decideIfChanged(state []byte, hasState, newUI bool, trigger string) ([]byte, error) {
	if hasState && string(state) == pathFor(newUI) {
		return state, nil
	}
	return decide(newUI, trigger)
}

func main() {}

// decide takes the path the flag selects and reports it; the new state is
// the path.
func decide(newUI bool, trigger string) ([]byte, error) {
	if err := processRequest(newUI, trigger); err != nil {
		return nil, err
	}
	return []byte(pathFor(newUI)), nil
}

func pathFor(newUI bool) string {
	if newUI {
		return pathNew
	}
	return pathOld
}

// isFeatureEnabled reports whether FEATURE_<NAME> is true, yes or 1.
func isFeatureEnabled(name string) bool {
	value, ok := theater.Getenv("FEATURE_" + strings.ToUpper(name))
	if !ok {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(value)) {
	case "true", "yes", "1":
		return true
	default:
		return false
	}
}

// processRequest handles a request down the path the flag selects and
// reports which one it took, and what made it decide (init or a tick).
func processRequest(newUI bool, trigger string) error {
	path, page := pathFor(newUI), render(newUI)
	if err := theater.Info(fmt.Sprintf("feature %s is %s (%s): served the request with the %s path (%d bytes)",
		feature, onOff(newUI), trigger, path, len(page))); err != nil {
		return err
	}
	event, err := json.Marshal(map[string]any{"feature": feature, "enabled": newUI, "path": path, "trigger": trigger})
	if err != nil {
		return fmt.Errorf("feature-flags: encoding the feature_path event: %w", err)
	}
	return theater.RecordEvent("feature_path", event)
}

func render(newUI bool) string {
	if newUI {
		return renderNewUI()
	}
	return renderOldUI()
}

func renderNewUI() string { return `<main class="v2"><h1>Welcome</h1></main>` }
func renderOldUI() string { return `<table><tr><td>Welcome</td></tr></table>` }

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
