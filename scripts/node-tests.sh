#!/usr/bin/env bash
# Runs the Node interop tests (interop/node/test/*.test.js: the wire-fidelity
# test of the upstream-equivalent transport against testdata's vectors, and
# offline checks of the vectors and helpers) with the Node of scripts/node.sh.
#
#   scripts/with-emulator.sh scripts/node-tests.sh   (what `make test` runs)
#   scripts/node-tests.sh                            (starts an emulator itself)
#
# The fidelity test needs AWS_ENDPOINT_URL. Without it this script runs itself
# under scripts/with-emulator.sh, except under CI=true, where a missing
# endpoint is an error: CI must not pass without running the tests.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ -z "${AWS_ENDPOINT_URL:-}" ]]; then
  [[ "${CI:-}" != true ]] || die "AWS_ENDPOINT_URL is not set under CI=true: run me through scripts/with-emulator.sh"
  exec "$REPO_ROOT/scripts/with-emulator.sh" "$REPO_ROOT/scripts/node-tests.sh" "$@"
fi

node="$("$REPO_ROOT/scripts/node.sh")"
"$REPO_ROOT/scripts/install-interop.sh"
cd "$REPO_ROOT/interop/node"
# A directory argument is not expanded by node --test (Node 22): use a glob,
# which node expands itself.
exec "$node" --test "$@" 'test/*.test.js'
