#!/usr/bin/env bash
# Builds Kubernetes binaries, etcd, helm and crictl from source through the Go
# module proxy into one cache shared by envtest (hack/setup-envtest.sh) and the
# local cluster (hack/local-cluster.sh), so each is built once per version.
#
# Why from source: the module proxy is the only place binaries can come from
# where Troupe is built (no release downloads, no registry). Cold builds on two
# cores: kube-apiserver 5-10 min, kubelet ~6, kube-controller-manager ~3,
# kube-scheduler, kube-proxy and crictl about a minute each, helm 2-3 min;
# a cached binary is printed at once.
#
# Usage: hack/build-k8s.sh [--link DIR] NAME...
#   Prints the cached path of each NAME on stdout, one a line, building the
#   missing ones first. With --link DIR, also hard-links (or copies, across
#   file systems) each binary into DIR.
#   NAME: kube-apiserver kube-controller-manager kube-scheduler kubelet
#         kube-proxy kubectl etcd helm crictl
#
# Safe to run concurrently (one builder per tool and version, the others wait
# on a lock) and idempotent (a binary appears by an atomic rename, so one that
# exists is complete and is never rebuilt).
#
# Environment:
#   K8S_VERSION     Kubernetes version, default: the one go.mod's k8s.io/api matches
#   ETCD_VERSION    default v3.7.3
#   HELM_VERSION    default v3.22.0 (a v4.x version builds helm v4)
#   CRICTL_VERSION  default v1.37.0
#   BUILD_P         parallelism of the build (go build -p), default 2
#   TROUPE_CACHE    cache root, default ${XDG_CACHE_HOME:-$HOME/.cache}/troupe;
#                   binaries live in $TROUPE_CACHE/bin/<tool>-<version>_<os>-<arch>/
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "build-k8s: $*" >&2; }
die() { log "$*"; exit 1; }

link_dir=
if [[ "${1:-}" == --link ]]; then
  [[ $# -ge 2 ]] || die "--link needs a directory"
  link_dir=$2
  shift 2
fi
[[ $# -gt 0 ]] || die "usage: $0 [--link DIR] NAME... (kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl etcd helm crictl)"

# k8s.io/api v0.X.Y is released with Kubernetes v1.X.Y, so go.mod names the
# server version our client libraries were built against.
k8s_version=${K8S_VERSION:-}
if [[ -z "$k8s_version" ]]; then
  api_version=$(awk '$1 == "k8s.io/api" { print $2; exit }' "$root/go.mod")
  [[ "$api_version" =~ ^v0\.([0-9]+)\.([0-9]+)$ ]] ||
    die "cannot derive the Kubernetes version from go.mod's k8s.io/api ($api_version); set K8S_VERSION"
  k8s_version="v1.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
fi
k8s_version="v${k8s_version#v}"
[[ "$k8s_version" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || die "K8S_VERSION must look like v1.37.2, got $k8s_version"
k8s_minor=${BASH_REMATCH[1]}
staging_version="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
etcd_version="v$(v=${ETCD_VERSION:-v3.7.3}; echo "${v#v}")"
helm_version="v$(v=${HELM_VERSION:-v3.22.0}; echo "${v#v}")"
crictl_version="v$(v=${CRICTL_VERSION:-v1.37.0}; echo "${v#v}")"
parallel=${BUILD_P:-2}

cache=${TROUPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/troupe}
goos=$(go env GOOS)
goarch=$(go env GOARCH)
platform="${goos}-${goarch}"

# The throwaway modules must not see the project's go.work or GOFLAGS that
# only make sense inside it; -mod=mod lets them fill their own go.sum.
export GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0

# tool_of NAME: which tool (and so which cache directory and version) builds NAME.
tool_of() {
  case "$1" in
    kube-apiserver | kube-controller-manager | kube-scheduler | kubelet | kube-proxy | kubectl) echo kubernetes ;;
    etcd | helm | crictl) echo "$1" ;;
    *) die "unknown binary $1" ;;
  esac
}
version_of() {
  case "$1" in
    kubernetes) echo "$k8s_version" ;;
    etcd) echo "$etcd_version" ;;
    helm) echo "$helm_version" ;;
    crictl) echo "$crictl_version" ;;
  esac
}
dir_of() { echo "$cache/bin/$1-$(version_of "$1")_$platform"; }

# hack/setup-envtest.sh used to build kube-apiserver, kubectl and etcd into
# its own directory; adopting those (hard links, no copy) spares a developer
# who already ran the envtest suites a second ten-minute build.
adopt_envtest() { # <tool dir> <name>
  local envcache=${TROUPE_ENVTEST_CACHE:-$cache/envtest} pattern f
  case "$2" in
    kube-apiserver | kubectl) pattern="k8s-${k8s_version}_etcd-*_${platform}*" ;;
    etcd) pattern="k8s-*_etcd-${etcd_version}_${platform}*" ;;
    *) return 1 ;;
  esac
  for f in "$envcache"/$pattern/"$2"; do
    [[ -x "$f" && ! -L "$f" ]] || continue
    ln -f "$f" "$1/$2" 2>/dev/null || cp -f "$f" "$1/$2"
    log "reused $f"
    return 0
  done
  return 1
}

# Build date: the release's publication time on the proxy, so rebuilding
# gives the same `--version` output; gitCommit keeps its placeholder because
# the proxy serves no VCS origin.
k8s_ldflags() { # <go mod download -json output>
  local infofile build_date ld pkg
  infofile=$(sed -n 's/^[[:space:]]*"Info": "\(.*\)",\{0,1\}$/\1/p' <<<"$1")
  build_date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$infofile" 2>/dev/null || true)
  [[ -n "$build_date" ]] || build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  # The same variables Kubernetes' hack/lib/version.sh sets.
  ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X ${pkg}.gitVersion=${k8s_version} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${k8s_minor}"
    ld+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=${build_date}"
  done
  echo "$ld"
}

build_kubernetes() { # <out dir> <names...>
  local out=$1 kmod info gomod args n m pkgs=()
  shift
  # k8s.io/kubernetes requires its staging modules (k8s.io/api, ...) as v0.0.0
  # and maps them to ./staging with replace directives, which are ignored in a
  # dependency; a module that builds it must map each one to the published
  # version itself. The list comes from its go.mod rather than being
  # hard-coded. The module is kept, so later builds skip the resolution.
  kmod="$cache/src/kubernetes-$k8s_version"
  mkdir -p "$kmod"
  info=$(cd "$kmod" && go mod download -json "k8s.io/kubernetes@${k8s_version}")
  if [[ ! -f "$kmod/.ready" ]]; then
    rm -f "$kmod/go.mod" "$kmod/go.sum"
    gomod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' <<<"$info")
    [[ -n "$gomod" && -f "$gomod" ]] || die "go mod download k8s.io/kubernetes@${k8s_version} gave no go.mod: $info"
    mapfile -t staging < <(awk '$2 == "=>" && $3 ~ /^\.\/staging\// { print $1 }' "$gomod" | sort -u)
    [[ ${#staging[@]} -gt 0 ]] || die "found no staging modules in $gomod"
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
    (cd "$kmod" && go mod init troupe.local/build/kubernetes 2>/dev/null && go mod edit "${args[@]}")
    touch "$kmod/.ready"
    log "k8s.io/kubernetes ${k8s_version} with ${n} staging modules at ${staging_version}"
  fi
  for m in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$m"); done
  (cd "$kmod" && nice -n 10 go build -p "$parallel" -trimpath -ldflags "$(k8s_ldflags "$info")" -o "$out/" "${pkgs[@]}") >&2
}

build_etcd() { # <out dir>
  local emod="$cache/src/etcd-$etcd_version"
  mkdir -p "$emod"
  cat >"$emod/main.go" <<'EOF'
// Command etcd is etcd's own main, built from the module proxy.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  if [[ ! -f "$emod/go.mod" ]]; then
    (cd "$emod" && go mod init troupe.local/build/etcd 2>/dev/null && go mod edit -require "go.etcd.io/etcd/server/v3@${etcd_version}")
  fi
  (cd "$emod" && nice -n 10 go build -p "$parallel" -trimpath -ldflags "-s -w" -o "$1/etcd" .) >&2
}

build_helm() { # <out dir>
  local major=${helm_version%%.*}
  # `go install pkg@version` builds the release's own go.mod, outside any module.
  (cd "$cache" && GOBIN="$1" nice -n 10 go install -p "$parallel" -trimpath \
    -ldflags "-s -w -X helm.sh/helm/${major}/internal/version.version=${helm_version}" \
    "helm.sh/helm/${major}/cmd/helm@${helm_version}") >&2
}

build_crictl() { # <out dir>
  (cd "$cache" && GOBIN="$1" nice -n 10 go install -p "$parallel" -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=${crictl_version}" \
    "sigs.k8s.io/cri-tools/cmd/crictl@${crictl_version}") >&2
}

# ensure <tool> <names...>: every name exists in the tool's directory afterwards.
ensure() {
  local tool=$1 dir missing=() n work start
  shift
  dir=$(dir_of "$tool")
  for n in "$@"; do [[ -x "$dir/$n" ]] || missing+=("$n"); done
  [[ ${#missing[@]} -gt 0 ]] || return 0
  mkdir -p "$dir"
  exec {lock}>"$dir.lock"
  if ! flock -n "$lock"; then
    log "another build of $(basename "$dir") is running; waiting for it"
    flock "$lock"
  fi
  missing=()
  for n in "$@"; do
    [[ -x "$dir/$n" ]] || adopt_envtest "$dir" "$n" || missing+=("$n")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    work=$(mktemp -d "$dir/.build.XXXXXX")
    tmp_dirs+=("$work")
    start=$(date +%s)
    log "building ${missing[*]} $(version_of "$tool") (once; cached in $dir)"
    case "$tool" in
      kubernetes) build_kubernetes "$work" "${missing[@]}" ;;
      etcd) build_etcd "$work" ;;
      helm) build_helm "$work" ;;
      crictl) build_crictl "$work" ;;
    esac
    for n in "${missing[@]}"; do
      [[ -x "$work/$n" ]] || die "the build of $tool gave no $n"
      mv -f "$work/$n" "$dir/$n"
    done
    rm -rf "$work"
    log "built ${missing[*]} in $(($(date +%s) - start))s"
  fi
  exec {lock}>&-
}

tmp_dirs=()
# A finished build has removed its work directory already; errexit is still
# on inside the trap, so a failing chmod of a missing directory would turn a
# successful run into exit 1 (it did, on every run that built something).
cleanup() {
  local d
  for d in "${tmp_dirs[@]}"; do
    [[ -e "$d" ]] || continue
    chmod -R u+w "$d" 2>/dev/null || true
    rm -rf "$d"
  done
}
trap cleanup EXIT
# Without these an interrupted build would skip the EXIT trap and leave its
# work directory behind.
trap 'exit 130' INT
trap 'exit 143' TERM

# One build per tool, so the kube binaries share one `go build` (and its
# compiled packages) instead of linking each in its own run.
declare -A by_tool=()
for n in "$@"; do
  tool_of "$n" >/dev/null # dies on an unknown name, here rather than in a $(...)
  t=$(tool_of "$n")
  by_tool[$t]+=" $n"
done
for t in kubernetes etcd helm crictl; do
  # shellcheck disable=SC2086 # a space-separated list of binary names
  [[ -n "${by_tool[$t]:-}" ]] && ensure "$t" ${by_tool[$t]}
done

[[ -z "$link_dir" ]] || mkdir -p "$link_dir"
for n in "$@"; do
  p="$(dir_of "$(tool_of "$n")")/$n"
  if [[ -n "$link_dir" ]]; then
    ln -f "$p" "$link_dir/$n" 2>/dev/null || cp -f "$p" "$link_dir/$n"
  fi
  echo "$p"
done
