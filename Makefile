# make test   Go tests (race detector on) against a local SNS+SQS emulator
# make demo   the two-node cluster example against the emulator
# make bench  not yet
#
# Each target installs what it needs (tools/emulator: fauxqs, and Node 22 when
# the system node is older than 22.5), starts the emulator on 127.0.0.1 and
# stops it afterwards. Set AWS_ENDPOINT_URL to use another endpoint instead.

SHELL := bash
WITH_EMULATOR := scripts/with-emulator.sh

GO_TEST := go test -race -count=1 ./...

# NODE_TESTS hook: Node interop tests run after the Go tests once
# scripts/node-tests.sh exists (it gets its own emulator).
NODE_TESTS := $(wildcard scripts/node-tests.sh)

.PHONY: test demo bench emulator-install

test:
	$(WITH_EMULATOR) $(GO_TEST)
ifneq ($(NODE_TESTS),)
	$(WITH_EMULATOR) bash $(NODE_TESTS)
endif

demo:
	$(WITH_EMULATOR) go run ./examples/cluster

bench:
	@echo "bench: not yet"

# Install the emulator's npm packages only (done by the targets above anyway).
emulator-install:
	scripts/install-emulator.sh
