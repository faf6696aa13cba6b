// Command tickunlinked registers a tick function but does not import package
// ticker, so the module has no tick export: init must say so.
package main

import (
	"time"

	"github.com/troupe-dev/troupe/sdk/theater"
)

func init() {
	theater.OnInit(func(state []byte, _ bool, _ string) ([]byte, error) { return state, nil })
	theater.OnTick(func(state []byte, _ bool, _ time.Time) ([]byte, error) { return state, nil })
}

func main() {}
