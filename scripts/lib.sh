# Sourced by the other scripts in this folder; not run on its own.

# Absolute path of the repository root.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EMULATOR_DIR="$REPO_ROOT/tools/emulator"
# Git-ignored folder for logs, locks and other run-time files.
TOOLS_DIR="$REPO_ROOT/.tools"
# fauxqs needs Node >= 22.5 (its engines field; it uses node:sqlite).
NODE_MIN_MAJOR=22
NODE_MIN_MINOR=5

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# node_ok BIN: true if BIN runs and is Node >= NODE_MIN_MAJOR.NODE_MIN_MINOR.
node_ok() {
  local v major minor
  v="$("$1" -p 'process.versions.node' 2>/dev/null)" || return 1
  IFS=. read -r major minor _ <<<"$v"
  [[ "$major" =~ ^[0-9]+$ && "$minor" =~ ^[0-9]+$ ]] || return 1
  (( major > NODE_MIN_MAJOR || (major == NODE_MIN_MAJOR && minor >= NODE_MIN_MINOR) ))
}

# Absolute path of the system node if it is new enough; fails otherwise.
system_node() {
  local n
  n="$(command -v node 2>/dev/null)" || return 1
  [[ "$n" == /* ]] || return 1
  node_ok "$n" && echo "$n"
}
