#!/usr/bin/env bash
# Installs interop/node's npm packages (socket.io, socket.io-client, the AWS
# SDK clients, ...) from the committed lockfile with `npm ci`.
#
#   scripts/install-interop.sh
#
# Used by scripts/node-tests.sh and by the Go package internal/nodepeer.
# Re-running is cheap: a stamp in node_modules records the hash of
# package.json + package-lock.json, and nothing is done while it matches.
# Concurrent runs (parallel `go test` packages) are serialised with flock.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir="$REPO_ROOT/interop/node"
stamp="$dir/node_modules/.install-stamp"
want="$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -d' ' -f1)"

up_to_date() {
  [[ -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$want" ]]
}

up_to_date && exit 0

command -v npm >/dev/null || die "npm not found: install Node.js and npm (Node 20 or newer) first"
mkdir -p "$TOOLS_DIR"
exec 9>"$TOOLS_DIR/install-interop.lock"
flock 9
up_to_date && exit 0

echo "install-interop: npm ci in $dir" >&2
start=$SECONDS
# npm's own output goes to stderr so that callers' stdout stays clean.
npm ci --prefix "$dir" --no-audit --no-fund --ignore-scripts --loglevel=error >&2 \
  || die "npm ci failed in $dir"
echo "$want" >"$stamp"
echo "install-interop: done in $((SECONDS - start))s" >&2
