# shellcheck shell=bash
# Sourced by hack/image-local.sh and hack/local-cluster.sh: packs a directory
# into a one-layer image in the docker-archive format (what `docker save`
# writes), with nothing but tar and sha256sum. No Docker, registry or crane is
# needed, and `ctr images import` and `docker load` both read the result.
#
# The layer is reproducible: entries sorted by name, owned by 0:0, every
# mtime the epoch, so the same tree always gives the same image ID.

# docker_archive <rootfs dir> <ref> <config json> <out.tar> [<uid:gid:path>...]
#   <config json>: the image's "config" object, e.g.
#   '{"Entrypoint":["/manager"],"User":"65532:65532"}'.
#   <ref> must carry a tag (name:tag); it becomes the archive's RepoTags.
#   <uid:gid:path>: an entry (not its contents) owned by someone other than
#   root, e.g. a user's home directory; no chown needed, so non-root can build.
docker_archive() {
  local rootfs=$1 ref=$2 config=$3 out=$4 d diffid cfg cfgid arch own excludes=() u g p
  shift 4
  [[ -d "$rootfs" ]] || { echo "docker_archive: $rootfs is not a directory" >&2; return 1; }
  [[ "$ref" == *:* && "$ref" != *:latest ]] ||
    { echo "docker_archive: $ref needs a tag other than latest (latest makes the kubelet pull)" >&2; return 1; }
  arch=$(go env GOARCH 2>/dev/null || echo amd64)
  d=$(mktemp -d "$(dirname "$out")/.image.XXXXXX")
  # Top-level names without a leading "./", as `docker save` writes them.
  (cd "$rootfs" && find . -mindepth 1 -maxdepth 1 -printf '%P\n' | LC_ALL=C sort) >"$d/entries"
  for own in "$@"; do excludes+=(--exclude="./${own#*:*:}" --exclude="${own#*:*:}"); done
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu "${excludes[@]}" \
    -C "$rootfs" -cf "$d/layer.tar" -T "$d/entries"
  for own in "$@"; do
    IFS=: read -r u g p <<<"$own"
    tar --owner="$u" --group="$g" --numeric-owner --mtime=@0 --format=gnu --no-recursion \
      -C "$rootfs" -cf "$d/own.tar" "$p"
    tar --concatenate -f "$d/layer.tar" "$d/own.tar"
    rm -f "$d/own.tar"
  done
  diffid=$(sha256sum "$d/layer.tar" | cut -d' ' -f1)
  cfg="{\"architecture\":\"$arch\",\"os\":\"linux\",\"created\":\"1970-01-01T00:00:00Z\",\"config\":$config,"
  cfg+="\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$diffid\"]},"
  cfg+="\"history\":[{\"created\":\"1970-01-01T00:00:00Z\",\"created_by\":\"hack/lib/docker-archive.sh\"}]}"
  printf '%s' "$cfg" >"$d/config.json"
  cfgid=$(sha256sum "$d/config.json" | cut -d' ' -f1)
  mkdir "$d/$diffid"
  mv "$d/layer.tar" "$d/$diffid/layer.tar"
  mv "$d/config.json" "$d/$cfgid.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$cfgid" "$ref" "$diffid" >"$d/manifest.json"
  tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$d" -cf "$out.tmp" manifest.json "$cfgid.json" "$diffid/layer.tar"
  mv -f "$out.tmp" "$out"
  rm -rf "$d"
  # The image ID the runtime will show (sha256 of the config).
  echo "sha256:$cfgid"
}

# is_static <binary>: true when the binary needs no dynamic loader, which an
# image without libc cannot provide.
is_static() {
  if command -v readelf >/dev/null; then
    ! LC_ALL=C readelf -lW "$1" | grep -q 'Requesting program interpreter'
  else # no binutils: a Go binary records how it was built
    go version -m "$1" | grep -q 'CGO_ENABLED=0'
  fi
}
