#!/usr/bin/env bash
# Makes sure Debian's Chromium is at /usr/bin/chromium, for the browser
# end-to-end test (e2e/). playwright-core drives it; no browser is ever
# downloaded by playwright.
#
#   scripts/install-chromium.sh
#
# When /usr/bin/chromium is missing this runs `apt-get update` and
# `apt-get install chromium` (as root, or through sudo when it is available),
# as CI does on a fresh machine. CHROMIUM=/path/to/chromium skips all of it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

want="${CHROMIUM:-/usr/bin/chromium}"
if [[ -x "$want" ]]; then
  exit 0
fi
[[ -z "${CHROMIUM:-}" ]] || die "CHROMIUM=$CHROMIUM is not an executable"

command -v apt-get >/dev/null || die "/usr/bin/chromium is missing and there is no apt-get: install Chromium yourself and set CHROMIUM=/path/to/chromium"
sudo=()
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null || die "/usr/bin/chromium is missing: run 'apt-get install chromium' as root (or set CHROMIUM=/path/to/chromium)"
  sudo=(sudo)
fi

mkdir -p "$TOOLS_DIR"
# Two make runs at once must not run apt-get at once.
exec 9>"$TOOLS_DIR/install-chromium.lock"
flock 9
[[ -x "$want" ]] && exit 0

echo "install-chromium: apt-get install chromium (once per machine)" >&2
start=$SECONDS
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >&2 || die "apt-get update failed"
"${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium >&2 || die "apt-get install chromium failed"
[[ -x "$want" ]] || die "apt-get installed chromium but $want is still missing"
echo "install-chromium: done in $((SECONDS - start))s ($("$want" --version 2>/dev/null || echo '?'))" >&2
