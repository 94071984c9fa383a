#!/usr/bin/env bash
# Runs the browser end-to-end test of examples/chat (e2e/chat.test.mjs): installs Chromium
# with apt-get when /usr/bin/chromium is missing, the npm packages of e2e/ and
# examples/chat/web, then runs the test with the Node of scripts/node.sh.
#
#   scripts/with-emulator.sh scripts/e2e-tests.sh   (what `make test` runs)
#   scripts/e2e-tests.sh                            (starts an emulator itself)
#
# Without AWS_ENDPOINT_URL this runs itself under scripts/with-emulator.sh, except under
# CI=true, where a missing endpoint is an error. Nothing in the test is ever skipped.
# Screenshots of failed steps and the demo's log: test-artifacts/e2e/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ -z "${AWS_ENDPOINT_URL:-}" ]]; then
  [[ "${CI:-}" != true ]] || die "AWS_ENDPOINT_URL is not set under CI=true: run me through scripts/with-emulator.sh"
  exec "$REPO_ROOT/scripts/with-emulator.sh" "$REPO_ROOT/scripts/e2e-tests.sh" "$@"
fi

"$REPO_ROOT/scripts/install-chromium.sh"
"$REPO_ROOT/scripts/install-npm.sh" e2e examples/chat/web
node="$("$REPO_ROOT/scripts/node.sh")"
cd "$REPO_ROOT/e2e"
exec "$node" --test --test-reporter=spec "$@" chat.test.mjs
