// Command feature-flags is the seed's feature-flags use case: a feature is on
// when the variable FEATURE_<NAME> is true, yes or 1 (any case). The actor
// handles a request down the new or the old UI path accordingly, and logs and
// records a "feature-path" event saying which one it took.
//
// The variables come from the Actor's env (here, a ConfigMap through envFrom
// with the FEATURE_ prefix), and the host serves changes to a running actor
// without a restart. To watch that happen, set WATCH_SECONDS (at most 300):
// init then re-reads the flag every second for that long and reports every
// change of path; without it, init returns after one decision. A watching
// actor needs limits.callTimeout above WATCH_SECONDS.
package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/troupe-dev/troupe/sdk/theater"
)

// feature is the flag this actor consults.
const feature = "new_ui"

const maxWatch = 300 * time.Second

func init() {
	theater.OnInit(func(state []byte, hasState bool, _ string) ([]byte, error) {
		watch, err := watchDuration()
		if err != nil {
			return nil, err
		}
		enabled := isFeatureEnabled(feature)
		if err := processRequest(enabled); err != nil {
			return nil, err
		}
		for deadline := time.Now().Add(watch); time.Now().Before(deadline); {
			time.Sleep(time.Second)
			if now := isFeatureEnabled(feature); now != enabled {
				enabled = now
				if err := processRequest(enabled); err != nil {
					return nil, err
				}
			}
		}
		if !hasState {
			return nil, nil
		}
		return state, nil
	})
}

func main() {}

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
// reports which one it took.
func processRequest(newUI bool) error {
	path, page := "old-ui", renderOldUI()
	if newUI {
		path, page = "new-ui", renderNewUI()
	}
	if err := theater.Info(fmt.Sprintf("feature %s is %s: served the request with the %s path (%d bytes)",
		feature, onOff(newUI), path, len(page))); err != nil {
		return err
	}
	event, err := json.Marshal(map[string]any{"feature": feature, "enabled": newUI, "path": path})
	if err != nil {
		return fmt.Errorf("feature-flags: encoding the feature-path event: %w", err)
	}
	return theater.RecordEvent("feature-path", event)
}

func renderNewUI() string { return `<main class="v2"><h1>Welcome</h1></main>` }
func renderOldUI() string { return `<table><tr><td>Welcome</td></tr></table>` }

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// watchDuration reads WATCH_SECONDS: unset means do not watch.
func watchDuration() (time.Duration, error) {
	raw, ok := theater.Getenv("WATCH_SECONDS")
	if !ok || raw == "" {
		return 0, nil
	}
	secs, err := strconv.Atoi(raw)
	if err != nil || secs < 0 || time.Duration(secs)*time.Second > maxWatch {
		return 0, fmt.Errorf("feature-flags: WATCH_SECONDS=%q is not a whole number of seconds between 0 and %d", raw, int(maxWatch.Seconds()))
	}
	return time.Duration(secs) * time.Second, nil
}
