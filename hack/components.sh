#!/usr/bin/env bash
# Builds the WebAssembly components Troupe's tests run, with the real WIT
# toolchain pinned in hack/components/package-lock.json (jco 1.35.0, which
# carries wasm-tools' wit-component and the preview1 adapter, and
# componentize-js 0.23.0), installed from npm's registry into a cache.
#
# Usage:
#   hack/components.sh              builds (once; cached) the large components
#                                   and prints their directory on stdout
#   hack/components.sh --testdata   rebuilds the small components committed
#                                   under testdata/components
#   hack/components.sh --check      fails when a committed component differs
#                                   from what it rebuilds to
#   TROUPE_COMPONENTS=$(hack/components.sh) go test ./internal/wasmcomponent/...
#
# The large components (not committed; megabytes):
#   go-hello.wasm            examples/hello (GOOS=wasip1, -buildmode=c-shared)
#                            wrapped with the wasi_snapshot_preview1 reactor adapter
#   go-feature-flags.wasm    examples/feature-flags, the same, world ticking-actor
#   js-hello.wasm            examples/js-hello/actor.js by componentize-js
#   js-hello-pure.wasm       examples/js-hello/pure.js with no WASI features
#   js-counter.wasm          testdata/components/src/js-counter.js, world
#                            message-actor (handles sends and requests)
#   BUILD                    what built them, their sizes and build times
# The committed ones (testdata/components, each under 100 KB):
#   wat-actor.wasm   testdata/actors/wat-actor, no adapter, world simple-actor
#   tick.wasm        internal/actorhost/testdata/tick, no adapter, world ticking-actor
#   adapted.wasm     testdata/components/src/adapted, with the preview1 adapter
#
# The toolchain is installed once per lock file (npm ci; ~380 MB, about a
# minute), and a set of components is built once per set of inputs (the
# lock file, build.mjs, wit/, the JavaScript sources and the Go modules'
# bytes, so a change to an SDK rebuilds): a warm run only rebuilds the Go
# modules to hash them (seconds). A cold run takes two to four minutes on
# two cores. Safe to run concurrently (builders take a lock, finished
# directories appear by an atomic rename) and idempotent.
#
# Needs: node and npm (npm's registry reachable the first time), go.
# Environment:
#   TROUPE_COMPONENTS_CACHE  cache root, default ${XDG_CACHE_HOME:-$HOME/.cache}/troupe/components
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "components: $*" >&2; }

mode=build
case "${1:-}" in
  "") ;;
  --testdata) mode=testdata ;;
  --check) mode=check ;;
  *) echo "usage: hack/components.sh [--testdata|--check]" >&2; exit 2 ;;
esac

for tool in node npm go sha256sum flock; do
  if ! command -v "$tool" >/dev/null; then
    log "$tool not found (the components are built with node and npm, the Go actors with go)"
    exit 1
  fi
done

src=$root/hack/components
cache=${TROUPE_COMPONENTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/troupe/components}
mkdir -p "$cache"

hash_files() { cat "$@" | sha256sum | cut -c1-16; }

# The toolchain directory: node_modules of the lock file, complete once it
# exists (it appears by a rename).
toolchain=$cache/npm-$(hash_files "$src/package.json" "$src/package-lock.json")

work=""
cleanup() { if [[ -n "$work" ]]; then rm -rf "$work"; fi; }
trap cleanup EXIT
# Without these an interrupted build would skip the EXIT trap and leave its
# work directory behind.
trap 'exit 130' INT
trap 'exit 143' TERM

install_toolchain() {
  [[ -d "$toolchain" ]] && return
  exec 8>"$toolchain.lock"
  if ! flock -n 8; then
    log "another install of the toolchain is running; waiting for it"
    flock 8
  fi
  if [[ -d "$toolchain" ]]; then
    exec 8>&-
    return
  fi
  local start=$SECONDS
  work=$(mktemp -d "$toolchain.XXXXXX")
  cp "$src/package.json" "$src/package-lock.json" "$work/"
  log "installing the pinned toolchain (npm ci; about a minute)"
  # --ignore-scripts: none of these packages needs an install script, and a
  # build should not run code it did not ask for.
  (cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  mv -T "$work" "$toolchain"
  work=""
  exec 8>&-
  log "toolchain installed in $((SECONDS - start))s: $(du -sh "$toolchain" | cut -f1) in $toolchain"
}

# run_build runs build.mjs from inside the toolchain directory, where node
# resolves its packages (a uniquely named copy: the directory is shared).
run_build() {
  local script
  script=$(mktemp "$toolchain/.build-XXXXXX.mjs")
  cp "$src/build.mjs" "$script"
  local status=0
  node "$script" "$@" || status=$?
  rm -f "$script"
  return $status
}

# timed NAME CMD...: runs CMD and appends its time to $work/BUILD.
timed() {
  local name=$1 start=$SECONDS
  shift
  "$@"
  echo "$name built in $((SECONDS - start))s" >>"$work/BUILD"
}

go_core() { # go_core EXAMPLE OUT
  GOOS=wasip1 GOARCH=wasm go build -C "$root" -buildmode=c-shared -o "$2" "./examples/$1"
}

build_testdata() { # build_testdata DIR: the committed components, into DIR
  local dir=$1
  run_build wrap "$root/testdata/actors/wat-actor/actor.wasm" "$dir/wat-actor.wasm" "$root/wit/theater-simple.wit" simple-actor
  run_build wrap "$root/internal/actorhost/testdata/tick.wasm" "$dir/tick.wasm" "$root/wit/ticking" ticking-actor
  run_build wrap "$root/testdata/components/src/adapted.wasm" "$dir/adapted.wasm" "$root/wit/theater-simple.wit" simple-actor reactor
}

install_toolchain

case $mode in
  testdata)
    build_testdata "$root/testdata/components"
    exit 0
    ;;
  check)
    work=$(mktemp -d)
    build_testdata "$work"
    status=0
    for f in "$work"/*.wasm; do
      if ! cmp -s "$f" "$root/testdata/components/$(basename "$f")"; then
        log "testdata/components/$(basename "$f") is stale: run 'hack/components.sh --testdata' and commit it"
        status=1
      fi
    done
    exit $status
    ;;
esac

# The Go modules are rebuilt every time (the Go build cache makes that
# seconds) so the set's key follows the SDK and the examples.
gocore=$(mktemp -d "$cache/.go-XXXXXX")
work=$gocore
go_core hello "$gocore/hello.wasm"
go_core feature-flags "$gocore/feature-flags.wasm"
key=$( {
  cat "$src/package-lock.json" "$src/build.mjs" "$gocore/hello.wasm" "$gocore/feature-flags.wasm"
  find -L "$root/wit" "$root/examples/js-hello" "$root/testdata/components/src" -type f \( -name '*.wit' -o -name '*.js' \) | LC_ALL=C sort | xargs cat
  node --version
} | sha256sum | cut -c1-16)
set=$cache/set-$key
if [[ -d "$set" ]]; then
  echo "$set"
  exit 0
fi

exec 9>"$cache/.build.lock"
if ! flock -n 9; then
  log "another build of the components is running; waiting for it"
  flock 9
fi
if [[ -d "$set" ]]; then
  echo "$set"
  exit 0
fi

start=$SECONDS
log "building the components (JavaScript takes a minute or two)"
echo "toolchain: $(cd "$toolchain" && node -e 'for (const p of ["jco", "componentize-js", "preview2-shim"]) console.log(`  @bytecodealliance/${p} ${require(`./node_modules/@bytecodealliance/${p}/package.json`).version}`)')" >"$work/BUILD"
echo "node $(node --version), $(go version)" >>"$work/BUILD"
timed go-hello.wasm run_build wrap "$gocore/hello.wasm" "$work/go-hello.wasm" "$root/wit/theater-simple.wit" simple-actor reactor
timed go-feature-flags.wasm run_build wrap "$gocore/feature-flags.wasm" "$work/go-feature-flags.wasm" "$root/wit/ticking" ticking-actor reactor
timed js-hello.wasm run_build js "$root/examples/js-hello/actor.js" "$work/js-hello.wasm" "$root/wit/theater-simple.wit" simple-actor
timed js-hello-pure.wasm run_build js "$root/examples/js-hello/pure.js" "$work/js-hello-pure.wasm" "$root/wit/theater-simple.wit" simple-actor pure
# wit-parser (in componentize-js 0.23) takes the comment blocks right
# before both files' package lines for doc comments and refuses two: the
# message world is parsed from a copy whose theater-message.wit has its
# header comment (everything before "package") removed; the WIT itself is
# unchanged.
msgwit="$work/wit-messaging"
mkdir -p "$msgwit"
cp "$root/wit/theater-simple.wit" "$msgwit/"
sed -n '/^package /,$p' "$root/wit/theater-message.wit" >"$msgwit/theater-message.wit"
timed js-counter.wasm run_build js "$root/testdata/components/src/js-counter.js" "$work/js-counter.wasm" "$msgwit" message-actor
rm -rf "$msgwit"
rm -f "$work/hello.wasm" "$work/feature-flags.wasm"
(cd "$work" && for f in *.wasm; do echo "$f $(wc -c <"$f") bytes"; done) >>"$work/BUILD"
mv -T "$work" "$set"
work=""
log "components built in $((SECONDS - start))s in $set"
echo "$set"
