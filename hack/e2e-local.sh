#!/usr/bin/env bash
# `make test-e2e-local`: brings the local cluster up (hack/local-cluster.sh),
# builds the image without Docker and imports it, and the previous
# release's image for the upgrade test (below), runs the e2e suite against
# the cluster, and always takes the cluster down again, even when a step
# fails or the run is interrupted. Exits with the suite's status (or the
# first failing step's), and non-zero when down could not undo everything.
#
# The previous release is tag v0.1.0. A clone without tags (CI may clone
# main's history only) still has its commit, so when the tag is missing the
# commit is used: PREVIOUS_COMMIT below, which must stay the tag's commit.
# Its tree is exported with `git archive` into a temporary directory, and its
# image built from it with its own hack/image-local.sh, as
# troupe-previous:<version>; the suite's TestUpgrade installs its chart and
# samples from that tree and upgrades to this one.
#
# Environment (the Makefile passes them):
#   VERSION    the build's version, default `git describe --tags --always --dirty`
#   IMAGE      the image's reference, default troupe:<version>
#   IMAGE_TAR  where the image is written, default bin/troupe-image.tar
#   PREVIOUS   the release to upgrade from, default v0.1.0 (a tag, commit or
#              branch); PREVIOUS=none skips the upgrade test
#   E2E_FLAGS  extra `go test` flags, e.g. "-run TestClusterReachable -v"
#   KEEP_CLUSTER=1  leave the cluster up afterwards to look around (take it
#                   down with `make cluster-down`; the next run takes it down
#                   first, see below)
#
# One run at a time per machine: the cluster is a set of host-wide things
# (a bridge, iptables chains, /var/lib/kubelet), so a second run waits for
# the first one's lock (a flock on $TROUPE_CLUSTER_DIR.e2e.lock). Once it
# holds the lock, any cluster still up was left by a run that died before
# its EXIT trap could take it down (a killed CI job, a SIGKILL): its Helm
# release and Actors would fail this run's preflight, so it is taken down
# and the run starts from a fresh cluster.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { echo "e2e-local: $*" >&2; }

export VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
IMAGE=${IMAGE:-$(hack/image-local.sh --print-ref)}
IMAGE_TAR=${IMAGE_TAR:-bin/troupe-image.tar}
PREVIOUS=${PREVIOUS:-v0.1.0}
# v0.1.0's commit, for clones without the tag.
PREVIOUS_COMMIT=6048b32013491681bb783ec8262048e1a27ee72a
previous_tree=

finish() {
  local rc=$?
  trap - EXIT INT TERM
  [[ -z $previous_tree ]] || rm -rf "$previous_tree"
  if [[ ${KEEP_CLUSTER:-0} == 1 ]]; then
    log "KEEP_CLUSTER=1: the cluster stays up ($(hack/local-cluster.sh env))"
  elif ! hack/local-cluster.sh down; then
    log "taking the cluster down failed; run 'make cluster-down' again"
    ((rc != 0)) || rc=1
  fi
  log "exit status $rc"
  exit "$rc"
}

# previous_release exports the release to upgrade from and builds its image:
# sets previous_tree, previous_version and previous_image.
previous_release() {
  local commit
  if commit=$(git rev-parse -q --verify "$PREVIOUS^{commit}"); then
    previous_version=$PREVIOUS
  elif [[ $PREVIOUS == v0.1.0 ]] && commit=$(git rev-parse -q --verify "$PREVIOUS_COMMIT^{commit}"); then
    log "no tag $PREVIOUS in this clone (git fetch --tags fetches it); using its commit $PREVIOUS_COMMIT"
    previous_version=$PREVIOUS
  else
    log "the previous release $PREVIOUS is neither a tag, a commit nor a branch of this repository (a shallow clone?);" \
      "fetch it (git fetch --tags), set PREVIOUS to another one, or PREVIOUS=none to skip the upgrade test"
    return 1
  fi
  previous_tree=$(mktemp -d "${TMPDIR:-/tmp}/troupe-previous.XXXXXX")
  git archive "$commit" | tar -x -C "$previous_tree"
  previous_image=troupe-previous:$(tr -c 'A-Za-z0-9_.\n-' '-' <<<"$previous_version")
  log "building the previous release $previous_version ($commit) as $previous_image"
  VERSION=$previous_version IMAGE=$previous_image "$previous_tree/hack/image-local.sh" -o "$previous_tree/image.tar" >/dev/null
}

cluster_dir=${TROUPE_CLUSTER_DIR:-/tmp/troupe-cluster}
cluster_dir=${cluster_dir%/}
lock=$cluster_dir.e2e.lock
exec 9>>"$lock"
if ! flock -n 9; then
  log "another e2e run holds $lock; waiting for it to finish"
  flock 9
fi
# Children must not inherit fd 9 (9>&-): a cluster component that kept it
# would hold the lock after this run has ended.
if [[ -e $cluster_dir ]]; then
  log "$cluster_dir is left from an earlier run that did not take its cluster down; taking it down first"
  hack/local-cluster.sh down 9>&- >/dev/null
fi
# From here on the cluster is this run's: it is taken down on any exit. (Set
# only now, so that a run interrupted while it waits for the lock never
# takes down the cluster of the run it was waiting for.)
trap finish EXIT
# An interrupted run still takes the cluster down (EXIT runs after these).
trap 'exit 130' INT
trap 'exit 143' TERM

start=$SECONDS
hack/local-cluster.sh up 9>&- >/dev/null
up_s=$((SECONDS - start))
IMAGE=$IMAGE hack/image-local.sh -o "$IMAGE_TAR" >/dev/null
hack/local-cluster.sh import "$IMAGE_TAR"
upgrade_env=()
if [[ $PREVIOUS != none ]]; then
  previous_start=$SECONDS
  previous_release
  hack/local-cluster.sh import "$previous_tree/image.tar"
  log "previous release built and imported in $((SECONDS - previous_start))s"
  upgrade_env=(TROUPE_E2E_PREVIOUS_TREE="$previous_tree" TROUPE_E2E_PREVIOUS_IMAGE="$previous_image"
    TROUPE_E2E_PREVIOUS_VERSION="$previous_version")
fi
eval "$(hack/local-cluster.sh env)"
# The archive steps: the suite serves S3 (versitygw, cached by `make test`)
# on the cluster's bridge address, which the host pods reach, and deletes
# the hosts' data directory itself, the node being this machine.
archive_env=(TROUPE_E2E_S3_ADDR=10.244.0.1 TROUPE_E2E_LOCAL_NODE=1 TROUPE_VERSITYGW="${TROUPE_VERSITYGW:-$(hack/s3-server.sh)}")
# The deploy step ships the JavaScript example through the cluster's
# registry (TROUPE_REGISTRY, from env above); components are cached.
export TROUPE_COMPONENTS=${TROUPE_COMPONENTS:-$(hack/components.sh)}
log "running the e2e suite against $KUBECONFIG with $IMAGE (cluster up in ${up_s}s)"
# shellcheck disable=SC2086 # E2E_FLAGS is a list of flags
env "${upgrade_env[@]}" "${archive_env[@]}" TROUPE_E2E_IMAGE="$IMAGE" TROUPE_E2E_VERSION="$VERSION" \
  go test -tags e2e -count=1 -timeout 30m ${E2E_FLAGS:-} ./test/e2e/... 9>&-
