# make test   Go tests (race detector on) against a local SNS+SQS emulator,
#             the Node interop tests, examples/cluster once, and the browser
#             end-to-end test of examples/chat (Chromium from apt when missing)
# make demo   the chat demo (examples/chat: 3 Go nodes, a web page each)
#             against the emulator; Ctrl-C stops everything
# make bench  this adapter vs upstream's transport, side by side on the emulator
#             and with AWS-like latency added, and the codec microbenchmarks:
#             bench/out/results.{json,md}
# make bench-scale  Go clusters of 3, 10, 30 and 50 servers and Node clusters
#             (upstream's transport) of 3, 10 and 30: idle AWS requests per
#             server-minute, join and crash detection, fetchSockets, broadcast
#             latency, Go heap (10 000 sockets): bench/out/scale.{json,md};
#             about 15 minutes. Not part of make test.
#
# Each target installs what it needs (tools/emulator: fauxqs, and Node 22 when
# the system node is older than 22.5), starts the emulator on 127.0.0.1 and
# stops it afterwards. Set AWS_ENDPOINT_URL to use another endpoint instead.

SHELL := bash
WITH_EMULATOR := scripts/with-emulator.sh

GO_TEST := go test -race -count=1 ./...
# A fixed, short run of the fuzzer over raw SQS message to dispatch (no emulator needed):
# a count, not a duration, and no minimizing, because a -fuzztime deadline that lands while the
# fuzzer minimizes an input fails the run with "context deadline exceeded".
GO_FUZZ := go test -run '^$$' -fuzz FuzzHandleSQSMessage -fuzztime 100000x -fuzzminimizetime 0 .
# The soak (300 clients, 2000 broadcasts) runs without the race detector to fit its time.
GO_SOAK := go test -tags soak -run TestSoak -count=1 -v .

# NODE_TESTS hook: Node interop tests run after the Go tests once
# scripts/node-tests.sh exists (it gets its own emulator).
NODE_TESTS := $(wildcard scripts/node-tests.sh)

.PHONY: test demo bench bench-scale emulator-install

test:
	$(WITH_EMULATOR) $(GO_TEST)
	$(GO_FUZZ)
	$(WITH_EMULATOR) $(GO_SOAK)
ifneq ($(NODE_TESTS),)
	$(WITH_EMULATOR) bash $(NODE_TESTS)
endif
	$(WITH_EMULATOR) go run ./examples/cluster
	$(WITH_EMULATOR) scripts/e2e-tests.sh

# DEMO_FLAGS: flags of examples/chat, e.g. make demo DEMO_FLAGS="-port 0 -nodes 4".
# Built, not `go run`: go run exits 1 after Ctrl-C even when the program shut
# down cleanly.
demo:
	scripts/install-npm.sh examples/chat/web
	go build -o .tools/chat ./examples/chat
	$(WITH_EMULATOR) .tools/chat $(DEMO_FLAGS)

# The codec microbenchmarks run first, without the emulator; then bench/ runs
# the same workload on 3 Go nodes (this adapter) and on 3 Node peers
# (upstream's transport) against one emulator, in two profiles: as it is, and
# through a proxy in the bench process that adds 15 ms + 0..10 ms to every
# request (AWS-like). It writes bench/out/results.json and bench/out/results.md
# (also printed), with the issue's targets met or not. About 10 minutes (the
# emulator profile alone took 5); `go run ./bench -help` for the flags.
bench:
	mkdir -p bench/out
	set -o pipefail; go test -run '^$$' -bench . -benchmem . | tee bench/out/codec.txt
	$(WITH_EMULATOR) go run ./bench -codec bench/out/codec.txt -out bench/out

# One emulator for the whole run; per size and side: start the servers (the Go
# ones in this process, one Node process each), 60 s idle (four Go heartbeat
# instants), 10 fetchSockets, 20 broadcasts/s for 10 s, then one more server
# joins and is killed (SIGKILL: the others drop it after the heartbeat
# timeout, 30 s between Go servers). Flags: `go run ./bench -help` (-scale-*).
bench-scale:
	mkdir -p bench/out
	$(WITH_EMULATOR) go run ./bench -scale -out bench/out

# Install the emulator's npm packages only (done by the targets above anyway).
emulator-install:
	scripts/install-emulator.sh
