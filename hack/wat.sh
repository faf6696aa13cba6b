#!/usr/bin/env bash
# Compiles every hand-written WebAssembly text module (*.wat) in the tree to
# the .wasm beside it. Tests load the committed .wasm files, so a plain
# `go test` needs no wabt; `--check` fails when a committed .wasm differs
# from what its .wat compiles to (CI installs wabt and runs it).
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
[[ "${1:-}" == "--check" ]] && check=true

if ! command -v wat2wasm >/dev/null; then
  echo "wat.sh: wat2wasm not found; install it with 'apt-get install wabt'" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
while IFS= read -r wat; do
  out="${wat%.wat}.wasm"
  # --debug-names keeps function names in traps, which makes test failures readable.
  wat2wasm --enable-all --debug-names -o "$tmp/out.wasm" "$wat"
  if $check; then
    if ! cmp -s "$tmp/out.wasm" "$out"; then
      echo "wat.sh: $out is stale; run 'make wat' and commit it" >&2
      status=1
    fi
  else
    cp "$tmp/out.wasm" "$out"
  fi
done < <(git ls-files -co --exclude-standard '*.wat')
exit $status
