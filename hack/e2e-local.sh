#!/usr/bin/env bash
# `make test-e2e-local`: brings the local cluster up (hack/local-cluster.sh),
# builds the image without Docker and imports it, runs the e2e suite against
# the cluster, and always takes the cluster down again, even when a step
# fails or the run is interrupted. Exits with the suite's status (or the
# first failing step's), and non-zero when down could not undo everything.
#
# Environment (the Makefile passes them):
#   VERSION    the build's version, default `git describe --tags --always --dirty`
#   IMAGE      the image's reference, default troupe:<version>
#   IMAGE_TAR  where the image is written, default bin/troupe-image.tar
#   E2E_FLAGS  extra `go test` flags, e.g. "-run TestClusterReachable -v"
#   KEEP_CLUSTER=1  leave the cluster up afterwards to look around (take it
#                   down with `make cluster-down`)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { echo "e2e-local: $*" >&2; }

export VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
IMAGE=${IMAGE:-$(hack/image-local.sh --print-ref)}
IMAGE_TAR=${IMAGE_TAR:-bin/troupe-image.tar}

finish() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ ${KEEP_CLUSTER:-0} == 1 ]]; then
    log "KEEP_CLUSTER=1: the cluster stays up ($(hack/local-cluster.sh env))"
  elif ! hack/local-cluster.sh down; then
    log "taking the cluster down failed; run 'make cluster-down' again"
    ((rc != 0)) || rc=1
  fi
  log "exit status $rc"
  exit "$rc"
}
trap finish EXIT
# An interrupted run still takes the cluster down (EXIT runs after these).
trap 'exit 130' INT
trap 'exit 143' TERM

start=$SECONDS
hack/local-cluster.sh up >/dev/null
up_s=$((SECONDS - start))
IMAGE=$IMAGE hack/image-local.sh -o "$IMAGE_TAR" >/dev/null
hack/local-cluster.sh import "$IMAGE_TAR"
eval "$(hack/local-cluster.sh env)"
log "running the e2e suite against $KUBECONFIG with $IMAGE (cluster up in ${up_s}s)"
# shellcheck disable=SC2086 # E2E_FLAGS is a list of flags
TROUPE_E2E_IMAGE=$IMAGE TROUPE_E2E_VERSION=$VERSION \
  go test -tags e2e -count=1 -timeout 20m ${E2E_FLAGS:-} ./test/e2e/...
