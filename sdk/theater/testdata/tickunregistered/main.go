// Command tickunregistered imports package ticker, so the module exports
// tick, but registers no tick function: init must say so.
package main

import (
	"github.com/troupe-dev/troupe/sdk/theater"
	_ "github.com/troupe-dev/troupe/sdk/theater/ticker"
)

func init() {
	theater.OnInit(func(state []byte, _ bool, _ string) ([]byte, error) { return state, nil })
}

func main() {}
