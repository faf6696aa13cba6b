#!/usr/bin/env bash
# Builds the control plane that envtest suites run against (kube-apiserver,
# etcd, and a matching kubectl) from source through the Go module proxy, caches
# it, and prints the directory to use as KUBEBUILDER_ASSETS on stdout.
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
k8s_minor=${BASH_REMATCH[1]}
staging_version="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
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
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
# Without these an interrupted build would skip the EXIT trap and leave
# its work directory behind.
trap 'exit 130' INT
trap 'exit 143' TERM
out="$work/out"
mkdir -p "$out"

# The throwaway modules must not see the project's go.work or GOFLAGS that
# only make sense inside it; -mod=mod lets them fill their own go.sum.
export GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0

start=$(date +%s)
log "building the control plane for envtest: kube-apiserver ${k8s_version}, etcd ${etcd_version} (5-10 minutes, once)"

# --- kube-apiserver (and kubectl) ---------------------------------------
# k8s.io/kubernetes requires its staging modules (k8s.io/api, ...) as v0.0.0
# and maps them to ./staging with replace directives, which are ignored in a
# dependency; a module that builds it must map each one to the published
# version itself. Read the list from its go.mod rather than hard-coding it.
kmod="$work/kube"
mkdir -p "$kmod"
(
  cd "$kmod"
  go mod init troupe.local/envtest/kube 2>/dev/null
  info=$(go mod download -json "k8s.io/kubernetes@${k8s_version}")
  gomod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' <<<"$info")
  infofile=$(sed -n 's/^[[:space:]]*"Info": "\(.*\)",\{0,1\}$/\1/p' <<<"$info")
  # The proxy serves no VCS origin, so gitCommit keeps its placeholder; the
  # release's time makes buildDate reproducible.
  build_date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$infofile" 2>/dev/null || true)
  [[ -n "$build_date" ]] || build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  if [[ -z "$gomod" || ! -f "$gomod" ]]; then
    log "go mod download k8s.io/kubernetes@${k8s_version} gave no go.mod: $info"
    exit 1
  fi
  # Staging modules: required as v0.0.0 and replaced with a ./staging path.
  mapfile -t staging < <(awk '$2 == "=>" && $3 ~ /^\.\/staging\// { print $1 }' "$gomod" | sort -u)
  if [[ ${#staging[@]} -eq 0 ]]; then
    log "found no staging modules in $gomod"
    exit 1
  fi
  args=(-require "k8s.io/kubernetes@${k8s_version}")
  n=0
  for m in "${staging[@]}"; do
    case "$m" in
      # The proxy refuses these and nothing we build imports them.
      k8s.io/sample-cli-plugin | k8s.io/sample-controller) continue ;;
    esac
    args+=(-replace "${m}@v0.0.0=${m}@${staging_version}")
    n=$((n + 1))
  done
  go mod edit "${args[@]}"
  log "kube-apiserver: k8s.io/kubernetes ${k8s_version} with ${n} staging modules at ${staging_version}"

  # What `kube-apiserver --version` and `kubectl version` print; the same
  # variables Kubernetes' hack/lib/version.sh sets.
  ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X ${pkg}.gitVersion=${k8s_version} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${k8s_minor}"
    ld+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=${build_date}"
  done
  pkgs=(k8s.io/kubernetes/cmd/kube-apiserver)
  [[ "$kubectl_mode" == build ]] && pkgs+=(k8s.io/kubernetes/cmd/kubectl)
  go build -p "$parallel" -trimpath -ldflags "$ld" -o "$out/" "${pkgs[@]}"
) >&2
log "kube-apiserver built after $(( $(date +%s) - start ))s"

# --- etcd ----------------------------------------------------------------
emod="$work/etcd"
mkdir -p "$emod"
(
  cd "$emod"
  go mod init troupe.local/envtest/etcd 2>/dev/null
  cat >main.go <<'EOF'
// Command etcd is etcd's own main, built from the module proxy for envtest.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  go mod edit -require "go.etcd.io/etcd/server/v3@${etcd_version}"
  go build -p "$parallel" -trimpath -ldflags "-s -w" -o "$out/etcd" .
) >&2

"$out/kube-apiserver" --version >&2
"$out/etcd" --version >&2
log "control plane built in $(( $(date +%s) - start ))s: $(du -sh "$out" | cut -f1) in $dir"

# Nothing else writes $dir while we hold the lock; an incomplete leftover
# (a binary deleted by hand) is replaced whole.
rm -rf "$dir"
mv -T "$out" "$dir"
echo "$dir"
