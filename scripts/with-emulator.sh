#!/usr/bin/env bash
# Runs a command against a local SNS+SQS emulator (fauxqs) on 127.0.0.1.
#
#   scripts/with-emulator.sh CMD [ARGS...]
#
# If AWS_ENDPOINT_URL is already set, the command runs as it is, against that
# endpoint (another emulator, or real AWS with the endpoint of your choice).
# Otherwise this installs fauxqs if needed, starts it on a free loopback port,
# waits for GET /health, and runs the command with
#   AWS_ENDPOINT_URL=http://127.0.0.1:<port>
#   AWS_REGION=us-east-1, AWS_ACCESS_KEY_ID=test, AWS_SECRET_ACCESS_KEY=test
#     (each only where it is unset)
# The emulator is stopped when the command ends, however it ends, and the
# command's exit code is returned. The emulator's log is printed if the
# command fails (set FAUXQS_LOGGER=true for fauxqs's request log).
#
# EMULATOR_START_TIMEOUT (seconds, default 30) bounds the wait for /health.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -gt 0 ]] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }

if [[ -n "${AWS_ENDPOINT_URL:-}" ]]; then
  exec "$@"
fi

node="$("$REPO_ROOT/scripts/node.sh")"
"$REPO_ROOT/scripts/install-emulator.sh"
[[ -f "$EMULATOR_DIR/node_modules/fauxqs/dist/app.js" ]] || die "fauxqs is missing after install"

mkdir -p "$TOOLS_DIR"
# Logs of failed runs are kept for a day.
find "$TOOLS_DIR" -maxdepth 1 -name 'fauxqs.*.log' -mtime +1 -delete 2>/dev/null || true
log="$(mktemp "$TOOLS_DIR/fauxqs.XXXXXX.log")"
portfile="$log.port"
pid=

show_log() {
  echo "---- emulator log ($log) ----" >&2
  if [[ -s "$log" ]]; then
    tail -n 200 "$log" >&2 || true
  else
    echo "(empty; FAUXQS_LOGGER=true adds fauxqs's request log)" >&2
  fi
  echo "---- end of emulator log ----" >&2
}

stop_emulator() {
  [[ -n "$pid" ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  pid=
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stop_emulator
  rm -f "$portfile" "$portfile.tmp"
  if [[ $status -ne 0 ]]; then
    show_log
    echo "with-emulator: exit status $status; emulator log kept at $log" >&2
  else
    rm -f "$log"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start.mjs runs fauxqs bound to 127.0.0.1 (fauxqs alone binds 0.0.0.0; see
# tools/emulator/loopback.mjs). FAUXQS_PORT=0: the kernel picks a free port,
# which start.mjs writes to the port file once it is listening.
# setsid: the emulator gets a session of its own, so that Ctrl-C in the
# terminal reaches the command but not the emulator, which must outlive the
# command's clean-up (deleting its queues) and is stopped by cleanup above.
# (Node resets SIGINT to its default, so ignoring it here would not do.)
FAUXQS_PORT=0 FAUXQS_LOGGER="${FAUXQS_LOGGER:-false}" EMULATOR_PORT_FILE="$portfile" \
  setsid "$node" --disable-warning=ExperimentalWarning "$EMULATOR_DIR/start.mjs" \
  </dev/null >"$log" 2>&1 &
pid=$!

# http_ok PORT PATH: true if GET http://127.0.0.1:PORT/PATH answers 200.
# Uses bash's /dev/tcp so it needs no curl.
http_ok() {
  timeout 2 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n" "$2" "$1" >&3
    IFS= read -r status <&3 && [[ "$status" == "HTTP/1."[01]" 200"* ]]
  ' _ "$1" "$2" 2>/dev/null
}

timeout_s="${EMULATOR_START_TIMEOUT:-30}"
deadline=$((SECONDS + timeout_s))
port=
while :; do
  kill -0 "$pid" 2>/dev/null || die "fauxqs exited before it was ready"
  if [[ -z "$port" && -s "$portfile" ]]; then
    read -r port <"$portfile"
  fi
  if [[ -n "$port" ]] && http_ok "$port" /health; then
    break
  fi
  (( SECONDS < deadline )) || die "fauxqs did not answer GET /health within ${timeout_s}s (port: ${port:-not yet bound})"
  sleep 0.1
done

export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
echo "with-emulator: fauxqs $AWS_ENDPOINT_URL (pid $pid)" >&2

set +e
"$@"
rc=$?
set -e
exit "$rc"
