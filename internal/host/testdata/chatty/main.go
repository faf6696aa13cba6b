// Command chatty is a test actor of the host's suite: a ticking actor that
// records CHATTER events (default 50) on every tick, so its chain head
// moves all the time.
package main

import (
	"strconv"
	"time"

	"github.com/troupe-dev/troupe/sdk/theater"
	_ "github.com/troupe-dev/troupe/sdk/theater/ticker"
)

func init() {
	theater.OnInit(func(state []byte, _ bool, _ string) ([]byte, error) { return state, nil })
	theater.OnTick(func(state []byte, _ bool, _ time.Time) ([]byte, error) {
		n := 50
		if v, ok := theater.Getenv("CHATTER"); ok {
			n, _ = strconv.Atoi(v)
		}
		for i := range n {
			if err := theater.RecordEvent("chatter", []byte(strconv.Itoa(i))); err != nil {
				return nil, err
			}
		}
		return state, nil
	})
}

func main() {}
