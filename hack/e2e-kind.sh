#!/usr/bin/env bash
# Runs Troupe's e2e suite on a throwaway kind cluster, for developers and CI
# systems that have Docker (the local cluster of hack/local-cluster.sh is for
# machines without it):
#   1. creates a kind cluster with its own kubeconfig (~/.kube/config is not touched),
#   2. builds the image with `docker build` (the Dockerfile) and loads it into
#      the cluster's nodes (tag troupe:<version>, never latest),
#   3. runs `go test -tags e2e ./test/e2e/...` with KUBECONFIG and
#      TROUPE_E2E_IMAGE,
#   4. deletes the cluster, whatever happened (after exporting its logs to
#      $ARTIFACTS when the suite failed and ARTIFACTS is set).
# Exits with the suite's status (or the first failing step's).
#
# Environment:
#   KIND               kind binary; default: `kind` on PATH, else built with
#                      `go install sigs.k8s.io/kind@$KIND_VERSION` into the cache
#   KIND_VERSION       default v0.33.0
#   KIND_NODE_IMAGE    node image (e.g. kindest/node:v1.37.2); default: kind's own
#   KIND_CLUSTER_NAME  default troupe-e2e-<pid>, so parallel runs don't collide
#   VERSION, IMAGE     as for hack/image-local.sh (IMAGE default troupe:<version>)
#   DOCKER_BUILD=0     skip `docker build` and load bin/troupe-image.tar made by
#                      hack/image-local.sh instead (the same content, no Docker build)
#   E2E_FLAGS          extra `go test` flags, e.g. "-run TestClusterReachable -v"
#   KEEP_CLUSTER=1     keep the cluster afterwards (delete it with
#                      `kind delete cluster --name <name>`)
#   ARTIFACTS          directory for `kind export logs` when the suite fails
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { echo "e2e-kind: $*" >&2; }
die() { log "$*"; exit 1; }

command -v docker >/dev/null || die "docker is needed (without it, use make test-e2e-local)"
docker info >/dev/null 2>&1 || die "docker does not answer (is the daemon running, may this user use it?)"

export VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
IMAGE=${IMAGE:-$(hack/image-local.sh --print-ref)}
[[ ${IMAGE##*:} != latest && $IMAGE == *:* ]] || die "IMAGE must carry a tag other than latest: with latest the kubelet pulls, and nothing was pushed"
name=${KIND_CLUSTER_NAME:-troupe-e2e-$$}

kind=${KIND:-}
if [[ -z $kind ]]; then
  if command -v kind >/dev/null; then
    kind=$(command -v kind)
  else
    v=${KIND_VERSION:-v0.33.0}
    gobin=${TROUPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/troupe}/bin/kind-${v}_$(go env GOOS)-$(go env GOARCH)
    if [[ ! -x $gobin/kind ]]; then
      log "building kind $v (go install; once)"
      GOBIN=$gobin GOFLAGS='' CGO_ENABLED=0 go install "sigs.k8s.io/kind@$v"
    fi
    kind=$gobin/kind
  fi
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/troupe-e2e-kind.XXXXXX")
export KUBECONFIG=$work/kubeconfig
created=0
finish() {
  local rc=$?
  trap - EXIT INT TERM
  if ((created)); then
    if ((rc != 0)) && [[ -n ${ARTIFACTS:-} ]]; then
      mkdir -p "$ARTIFACTS"
      "$kind" export logs "$ARTIFACTS/kind-$name" --name "$name" >/dev/null 2>&1 &&
        log "cluster logs in $ARTIFACTS/kind-$name"
    fi
    if [[ ${KEEP_CLUSTER:-0} == 1 ]]; then
      log "KEEP_CLUSTER=1: cluster $name stays (KUBECONFIG=$KUBECONFIG; delete: $kind delete cluster --name $name)"
      trap - EXIT
      exit "$rc"
    fi
    "$kind" delete cluster --name "$name" >/dev/null 2>&1 || { log "deleting kind cluster $name failed"; ((rc != 0)) || rc=1; }
  fi
  rm -rf "$work"
  log "exit status $rc"
  exit "$rc"
}
trap finish EXIT
# Interrupted runs delete the cluster too (EXIT runs after these).
trap 'exit 130' INT
trap 'exit 143' TERM

log "creating kind cluster $name"
created=1 # from here on, a half-created cluster is deleted too
"$kind" create cluster --name "$name" --kubeconfig "$KUBECONFIG" --wait 5m ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"}

if [[ ${DOCKER_BUILD:-1} == 1 ]]; then
  [[ -f Dockerfile ]] || die "no Dockerfile (set DOCKER_BUILD=0 to load the image hack/image-local.sh builds)"
  log "docker build -t $IMAGE"
  docker build --build-arg "VERSION=$VERSION" -t "$IMAGE" .
  "$kind" load docker-image "$IMAGE" --name "$name"
else
  IMAGE=$IMAGE hack/image-local.sh -o "$work/image.tar" >/dev/null
  "$kind" load image-archive "$work/image.tar" --name "$name"
fi

log "running the e2e suite with $IMAGE"
# shellcheck disable=SC2086 # E2E_FLAGS is a list of flags
TROUPE_E2E_IMAGE=$IMAGE TROUPE_E2E_VERSION=$VERSION \
  go test -tags e2e -count=1 -timeout 20m ${E2E_FLAGS:-} ./test/e2e/...
