#!/usr/bin/env bash
# Builds Troupe's container image without Docker: the static binaries
# manager, host, gateway and troupe (./cmd/..., CGO_ENABLED=0) in one layer, run as the
# non-root uid 65532, written as a docker-archive tar that
# `hack/local-cluster.sh import`, `ctr images import` and `docker load` read.
#
# The layer holds exactly what the Dockerfile's image holds; the Dockerfile
# can assemble the same tree with `hack/image-local.sh --rootfs DIR` and copy
# it onto scratch:
#   /manager /host /troupe          static binaries, 0755 (entrypoint /manager)
#   /etc/passwd /etc/group          root, nobody and nonroot (65532, home /home/nonroot)
#   /etc/nsswitch.conf              hosts: files dns
#   /etc/ssl/certs/ca-certificates.crt   for OCI registries and https component URLs
#   /home/nonroot (0700, 65532)  /tmp (1777)
#   config: User 65532:65532, WorkingDir /, Entrypoint ["/manager"],
#   Env PATH and SSL_CERT_FILE as distroless/static:nonroot sets them.
# That is the part of distroless/static:nonroot (the Dockerfile's base) the
# binaries use; its tzdata and os-release are left out.
#
# Usage: hack/image-local.sh [-o OUT.tar]   prints the image reference on stdout
#        hack/image-local.sh --rootfs DIR   only lays the image's files out in DIR
#        hack/image-local.sh --print-ref    only prints the reference (troupe:<version>)
# Environment:
#   VERSION  the build's version, default `git describe --tags --always --dirty`
#   IMAGE    the reference, default troupe:$VERSION (never latest: it makes the kubelet pull)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/lib/docker-archive.sh
source "$root/hack/lib/docker-archive.sh"
log() { echo "image-local: $*" >&2; }
die() { log "$*"; exit 1; }

out="$root/bin/troupe-image.tar"
rootfs_only=
print_ref=
while [[ $# -gt 0 ]]; do
  case "$1" in
    -o) out=$2; shift 2 ;;
    --rootfs) rootfs_only=$2; shift 2 ;;
    --print-ref) print_ref=1; shift ;;
    *) die "usage: $0 [-o OUT.tar] | --rootfs DIR | --print-ref" ;;
  esac
done

version=${VERSION:-$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)}
[[ $version =~ ^[A-Za-z0-9._+~/-]+$ ]] || die "VERSION may hold letters, digits and ._+~/- only, got '$version'"
# A tag is [A-Za-z0-9_.-]{1,128} and does not start with . or -.
tag=$(tr -c 'A-Za-z0-9_.\n-' '-' <<<"$version")
tag=${tag#[.-]}
image=${IMAGE:-troupe:${tag:0:128}}
[[ "$image" == *:* && "${image##*:}" != latest ]] || die "IMAGE must carry a tag other than latest, got $image"
if [[ -n $print_ref ]]; then
  echo "$image"
  exit 0
fi

layout() { # <dir>: the image's files
  local dir=$1 b certs
  # The CA bundle registries and https URLs are verified against; Debian's
  # ca-certificates provides it where the image is built.
  certs=/etc/ssl/certs/ca-certificates.crt
  if [[ ! -s $certs ]]; then
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
      log "installing ca-certificates"
      apt-get install -y -qq --no-install-recommends ca-certificates >/dev/null ||
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends ca-certificates >/dev/null; }
    fi
    [[ -s $certs ]] || die "$certs is missing (apt-get install ca-certificates)"
  fi
  mkdir -p "$dir/etc/ssl/certs" "$dir/tmp"
  log "building manager, host, gateway and troupe $version (CGO_ENABLED=0)"
  (cd "$root" && CGO_ENABLED=0 GOOS=linux go build -trimpath \
    -ldflags "-s -w -X github.com/troupe-dev/troupe/internal/version.Version=$version" \
    -o "$dir/" ./cmd/manager ./cmd/host ./cmd/gateway ./cmd/troupe)
  for b in manager host gateway troupe; do
    [[ -x "$dir/$b" ]] || die "go build gave no $b"
    is_static "$dir/$b" || die "$b is dynamically linked; the image has no libc"
    chmod 0755 "$dir/$b"
  done
  cat >"$dir/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
  cat >"$dir/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
  echo "hosts: files dns" >"$dir/etc/nsswitch.conf"
  cp "$certs" "$dir/etc/ssl/certs/ca-certificates.crt"
  mkdir -p "$dir/home/nonroot"
  chmod 0644 "$dir/etc/passwd" "$dir/etc/group" "$dir/etc/nsswitch.conf" "$dir/etc/ssl/certs/ca-certificates.crt"
  chmod 0755 "$dir" "$dir/etc" "$dir/etc/ssl" "$dir/etc/ssl/certs" "$dir/home"
  chmod 0700 "$dir/home/nonroot"
  chmod 1777 "$dir/tmp"
}

if [[ -n "$rootfs_only" ]]; then
  mkdir -p "$rootfs_only"
  layout "$rootfs_only"
  exit 0
fi

mkdir -p "$(dirname "$out")"
work=$(mktemp -d "$(dirname "$out")/.rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
layout "$work/rootfs"
config='{"User":"65532:65532","WorkingDir":"/","Entrypoint":["/manager"],'
config+='"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"],'
config+='"Labels":{"org.opencontainers.image.title":"troupe","org.opencontainers.image.version":"'"$version"'",'
config+='"org.opencontainers.image.source":"https://github.com/troupe-dev/troupe"}}'
id=$(docker_archive "$work/rootfs" "$image" "$config" "$out" 65532:65532:home/nonroot)
log "wrote $out: $image, image ID $id, $(du -h "$out" | cut -f1)"
echo "$image"
