#!/usr/bin/env bash
# Installs the npm packages of one folder of this repository from its
# committed lockfile with `npm ci` (install scripts off: no package here
# needs one, and playwright-core must not download a browser).
#
#   scripts/install-npm.sh examples/chat/web e2e
#
# Re-running is cheap: a stamp in DIR/node_modules records the hash of
# package.json + package-lock.json, and nothing is done while it matches.
# Concurrent runs are serialised with flock.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -gt 0 ]] || { echo "usage: $0 DIR..." >&2; exit 2; }

install_dir() {
  local dir="$1" stamp want start
  [[ "$dir" == /* ]] || dir="$REPO_ROOT/$dir"
  [[ -f "$dir/package-lock.json" ]] || die "$dir has no package-lock.json"
  stamp="$dir/node_modules/.install-stamp"
  want="$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  command -v npm >/dev/null || die "npm not found: install Node.js and npm (Node 20 or newer) first"
  mkdir -p "$TOOLS_DIR"
  (
    flock 9
    [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && exit 0
    echo "install-npm: npm ci in ${dir#"$REPO_ROOT"/}" >&2
    start=$SECONDS
    # npm's own output goes to stderr so that callers' stdout stays clean.
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$dir" --no-audit --no-fund --ignore-scripts \
      --loglevel=error >&2 || die "npm ci failed in $dir"
    echo "$want" >"$stamp"
    echo "install-npm: done in $((SECONDS - start))s" >&2
  ) 9>"$TOOLS_DIR/install-npm.lock"
}

for d in "$@"; do
  install_dir "$d"
done
