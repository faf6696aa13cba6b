// Package theater is the Go guest SDK for Troupe actors: typed wrappers for the
// ten functions of theater:simple/runtime and the plumbing that exports
// theater:simple/actor#init, hiding the canonical-ABI glue.
//
// An actor registers its init function from a package init function (a Go
// reactor never runs main) and is built as a WASI reactor:
//
//	package main
//
//	import "github.com/troupe-dev/troupe/sdk/theater"
//
//	func init() {
//		theater.OnInit(func(state []byte, hasState bool, actorID string) ([]byte, error) {
//			if err := theater.Info("hello from " + actorID); err != nil {
//				return nil, err
//			}
//			return state, nil
//		})
//	}
//
//	func main() {}
//
//	// GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o hello.wasm .
//
// An actor that should also be called periodically registers a tick function
// with OnTick and imports package ticker, which links the optional export
// troupe:actor/ticker#tick (wit/troupe-ticker.wit).
//
// Runtime calls are safe from any goroutine; the SDK serializes them. Outside
// GOOS=wasip1 the package still compiles (so tools and vet work on actor code),
// but every runtime call fails with ErrNotWasm or panics saying so.
package theater
