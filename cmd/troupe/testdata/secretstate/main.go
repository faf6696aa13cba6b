// Command secretstate is a test actor of troupe run's suite. Init keeps
// the value of TOKEN as its state; on every later run it first logs the
// state it was handed, and only then reads TOKEN. That first log is the
// case where the runtime handler can scrub the secret only if it knew the
// value before the actor asked for it.
package main

import "github.com/troupe-dev/troupe/sdk/theater"

func init() { theater.OnInit(run) }

func main() {}

func run(state []byte, hasState bool, _ string) ([]byte, error) {
	if hasState {
		if err := theater.Info("saved state: " + string(state)); err != nil {
			return nil, err
		}
	}
	token, _ := theater.Getenv("TOKEN")
	return []byte(token), nil
}
