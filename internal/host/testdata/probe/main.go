// Command probe is a test actor of the host's suite: it reports what the
// host serves it, as events that never hold a variable's value.
//
//   - For each name in PROBE_VARS (comma-separated), an "env" event with
//     whether the variable is set and the SHA-256 of its value.
//   - A "sysinfo" event with the hostname get-system-info returns.
//   - The metric probe_runs = the number of runs so far (kept in its state).
//   - SHUTDOWN=1: it calls shutdown after init.
//   - FAIL_WITH=NAME: init fails with the value of variable NAME in its
//     message (a careless actor leaking a secret into its error).
//   - LOG_VAR=NAME: it logs the value of variable NAME (careless too).
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/troupe-dev/troupe/sdk/theater"
)

func init() { theater.OnInit(run) }

func main() {}

func run(state []byte, hasState bool, _ string) ([]byte, error) {
	runs := 0
	if hasState {
		runs, _ = strconv.Atoi(string(state))
	}
	runs++
	if list, ok := theater.Getenv("PROBE_VARS"); ok {
		for _, name := range strings.Split(list, ",") {
			v, set := theater.Getenv(name)
			sum := sha256.Sum256([]byte(v))
			data, _ := json.Marshal(map[string]any{"name": name, "set": set, "sha256": hex.EncodeToString(sum[:])})
			if err := theater.RecordEvent("env", data); err != nil {
				return nil, err
			}
		}
	}
	info := theater.GetSystemInfo()
	data, _ := json.Marshal(map[string]any{"hostname": info.Hostname, "cpus": info.CPUCount})
	if err := theater.RecordEvent("sysinfo", data); err != nil {
		return nil, err
	}
	if err := theater.RecordMetric("probe_runs", float64(runs)); err != nil {
		return nil, err
	}
	if name, ok := theater.Getenv("LOG_VAR"); ok {
		v, _ := theater.Getenv(name)
		if err := theater.Info("the value is " + v); err != nil {
			return nil, err
		}
	}
	if name, ok := theater.Getenv("FAIL_WITH"); ok {
		v, _ := theater.Getenv(name)
		return nil, errors.New("cannot connect with password " + v)
	}
	if v, _ := theater.Getenv("SHUTDOWN"); v == "1" {
		if err := theater.Shutdown([]byte("bye")); err != nil {
			return nil, err
		}
	}
	return []byte(strconv.Itoa(runs)), nil
}
