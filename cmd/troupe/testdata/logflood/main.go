// Command logflood is a test actor of troupe run's suite: it logs more
// than a pipe holds. Init logs 200 lines of about 1 KiB, each tick 20
// more; the lines are numbered from 0 across init and ticks, so a chain
// that lost one shows a gap.
package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/troupe-dev/troupe/sdk/theater"
	_ "github.com/troupe-dev/troupe/sdk/theater/ticker"
)

func init() {
	theater.OnInit(func(state []byte, _ bool, _ string) ([]byte, error) { return state, flood(200) })
	theater.OnTick(func(state []byte, _ bool, _ time.Time) ([]byte, error) { return state, flood(20) })
}

func main() {}

var next int

var pad = strings.Repeat("x", 1000)

func flood(n int) error {
	for range n {
		if err := theater.Info(fmt.Sprintf("line %d %s", next, pad)); err != nil {
			return err
		}
		next++
	}
	return nil
}
