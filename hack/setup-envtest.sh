#!/usr/bin/env bash
# Builds the control plane that envtest suites run against (kube-apiserver,
# etcd, and a matching kubectl) from source through the Go module proxy, caches
# it, and prints the directory to use as KUBEBUILDER_ASSETS on stdout. The
# build itself is hack/build-k8s.sh's, shared with the local cluster.
#
# Why from source: setup-envtest's binary download is not reachable from
# where Troupe is built, but the module proxy is. The first run takes five to
# ten minutes on two cores and about 2.4 GB of memory; later runs print the
# cached directory at once.
# Safe to run concurrently (one builder per version set, the others wait on a
# lock) and idempotent (a finished directory is never rebuilt).
#
# Usage: hack/setup-envtest.sh            prints the assets directory
#        KUBEBUILDER_ASSETS=$(hack/setup-envtest.sh) go test ./...
#
# Environment:
#   ENVTEST_K8S_VERSION   Kubernetes version, default: the one go.mod's k8s.io/api matches
#   ENVTEST_ETCD_VERSION  etcd version, default below (newest v3.7 on the proxy when pinned)
#   ENVTEST_KUBECTL       build (default) | none — build a kubectl of the same version
#   ENVTEST_BUILD_P       parallelism of the build (go build -p), default 2
#   TROUPE_ENVTEST_CACHE  cache root, default ${XDG_CACHE_HOME:-$HOME/.cache}/troupe/envtest
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "setup-envtest: $*" >&2; }

# k8s.io/api v0.X.Y is released with Kubernetes v1.X.Y, so go.mod names the
# server version our client libraries were built against.
k8s_version=${ENVTEST_K8S_VERSION:-}
if [[ -z "$k8s_version" ]]; then
  api_version=$(awk '$1 == "k8s.io/api" { print $2; exit }' "$root/go.mod")
  if [[ ! "$api_version" =~ ^v0\.([0-9]+)\.([0-9]+)$ ]]; then
    log "cannot derive the Kubernetes version from go.mod's k8s.io/api ($api_version); set ENVTEST_K8S_VERSION"
    exit 1
  fi
  k8s_version="v1.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
fi
k8s_version="v${k8s_version#v}"
if [[ ! "$k8s_version" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]]; then
  log "ENVTEST_K8S_VERSION must look like v1.37.2, got $k8s_version"
  exit 1
fi
etcd_version=${ENVTEST_ETCD_VERSION:-v3.7.3}
etcd_version="v${etcd_version#v}"
kubectl_mode=${ENVTEST_KUBECTL:-build}
parallel=${ENVTEST_BUILD_P:-2}

cache=${TROUPE_ENVTEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/troupe/envtest}
goos=$(go env GOOS)
goarch=$(go env GOARCH)
name="k8s-${k8s_version}_etcd-${etcd_version}_${goos}-${goarch}"
[[ "$kubectl_mode" == build ]] && name+="_kubectl"
dir="$cache/$name"

complete() { [[ -x "$1/kube-apiserver" && -x "$1/etcd" ]]; }

# Fast path: a finished directory appears by an atomic rename, so its
# existence means it is complete.
if complete "$dir"; then
  echo "$dir"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.$name.lock"
if ! flock -n 9; then
  log "another build of $name is running; waiting for it"
  flock 9
fi
if complete "$dir"; then
  echo "$dir"
  exit 0
fi

work=$(mktemp -d "$cache/.build-$name.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Without these an interrupted build would skip the EXIT trap and leave
# its work directory behind.
trap 'exit 130' INT
trap 'exit 143' TERM
out="$work/out"

start=$(date +%s)
# hack/build-k8s.sh builds (once) into the cache it shares with the local
# cluster (hack/local-cluster.sh), so kube-apiserver is compiled once for
# both; the assets directory gets hard links to those binaries.
names=(kube-apiserver etcd)
[[ "$kubectl_mode" == build ]] && names+=(kubectl)
log "control plane for envtest: kube-apiserver ${k8s_version}, etcd ${etcd_version} (5-10 minutes when not built yet)"
K8S_VERSION=$k8s_version ETCD_VERSION=$etcd_version BUILD_P=$parallel \
  "$root/hack/build-k8s.sh" --link "$out" "${names[@]}" >/dev/null

"$out/kube-apiserver" --version >&2
"$out/etcd" --version >&2
log "control plane built in $(( $(date +%s) - start ))s: $(du -sh "$out" | cut -f1) in $dir"

# Nothing else writes $dir while we hold the lock; an incomplete leftover
# (a binary deleted by hand) is replaced whole.
rm -rf "$dir"
mv -T "$out" "$dir"
echo "$dir"
