#!/usr/bin/env bash
# Builds versitygw (github.com/versity/versitygw), a single Go binary that
# serves the S3 API from a directory, from source through the Go module proxy,
# caches it, and prints the binary's path on stdout. The archive tests
# (internal/archive, internal/s3test) start it on a loopback port with a
# temporary directory: a real S3 server, not a mock.
#
# Why versitygw: one static Go binary, buildable from the module proxy (the
# only place binaries can come from where Troupe is built), with a posix
# backend that needs nothing but a directory. Why from source: as for
# hack/setup-envtest.sh, release downloads are not reachable here.
# The cold build (empty module and build caches) costs about 320 CPU-seconds
# and downloads 336 MB of modules: three to four minutes on two idle cores,
# 17.5 minutes measured on a two-core machine at load 6 (docs/performance.md).
# It gives a 43 MB binary; later runs print the cached path at once.
#
# Safe to run concurrently (one builder per version, the others wait on a
# lock) and idempotent (the binary appears by an atomic rename, so one that
# exists is complete and is never rebuilt).
#
# Usage: hack/s3-server.sh            prints the versitygw binary's path
#        TROUPE_VERSITYGW=$(hack/s3-server.sh) go test ./internal/archive/...
#
# Environment:
#   VERSITYGW_VERSION  default v1.8.0
#   BUILD_P            parallelism of the build (go build -p), default 2
#   TROUPE_CACHE       cache root, default ${XDG_CACHE_HOME:-$HOME/.cache}/troupe;
#                      the binary lives in $TROUPE_CACHE/bin/versitygw-<version>_<os>-<arch>/
set -euo pipefail

log() { echo "s3-server: $*" >&2; }
die() { log "$*"; exit 1; }

version="v$(v=${VERSITYGW_VERSION:-v1.8.0}; echo "${v#v}")"
[[ "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "VERSITYGW_VERSION must look like v1.8.0, got $version"
parallel=${BUILD_P:-2}
cache=${TROUPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/troupe}
platform="$(go env GOOS)-$(go env GOARCH)"
dir="$cache/bin/versitygw-${version}_${platform}"
bin="$dir/versitygw"

# Fast path: the binary appears by an atomic rename, so its existence means
# it is complete.
if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$dir"
exec 9>"$dir.lock"
if ! flock -n 9; then
  log "another build of versitygw ${version} is running; waiting for it"
  flock 9
fi
if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi

work=$(mktemp -d "$dir/.build.XXXXXX")
# go install leaves read-only module files only in GOMODCACHE, not here, but a
# failed build may leave anything: make it writable before removing it.
trap 'chmod -R u+w "$work" 2>/dev/null || true; rm -rf "$work"' EXIT
# Without these an interrupted build would skip the EXIT trap and leave its
# work directory behind.
trap 'exit 130' INT
trap 'exit 143' TERM

# `go install pkg@version` builds the release's own go.mod, outside any
# module, so the project's go.work and GOFLAGS must not reach it.
export GOWORK=off GOFLAGS="-buildvcs=false" CGO_ENABLED=0
start=$(date +%s)
log "building versitygw ${version} (once; cached in $dir; a few minutes cold)"
# The build time is the release's publication time on the proxy, so a
# rebuild prints the same --version.
build_time=$(cd "$cache" && go list -m -json "github.com/versity/versitygw@${version}" 2>/dev/null |
  sed -n 's/^[[:space:]]*"Time": "\([^"]*\)".*/\1/p')
(cd "$cache" && GOBIN="$work" nice -n 10 go install -p "$parallel" -trimpath \
  -ldflags "-s -w -X main.Version=${version} -X main.Build=proxy -X main.BuildTime=${build_time:-unknown}" \
  "github.com/versity/versitygw/cmd/versitygw@${version}") >&2
[[ -x "$work/versitygw" ]] || die "the build of versitygw ${version} gave no binary"
"$work/versitygw" --version >&2
mv -f "$work/versitygw" "$bin"
log "built versitygw ${version} in $(($(date +%s) - start))s: $(du -h "$bin" | cut -f1)"
echo "$bin"
