package version

import "runtime/debug"

// Version is set at link time with
// -ldflags "-X github.com/troupe-dev/troupe/internal/version.Version=v1.2.3".
// When it is left empty, the module version from the build info is used, and
// "dev" when there is none (a `go run` or `go test` build).
var Version = ""

// String returns the version of this build.
func String() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
