# Tern — build, run and test. `make help` lists the targets.
GO        ?= go
BIN       := bin/tern
PKGS      := ./...
FUZZTIME  ?= 10m
# Fuzz targets as package:Target; `make fuzz` runs each for FUZZTIME.
FUZZ_TARGETS := ./codec:FuzzDecode31 ./codec:FuzzDecode311 ./codec:FuzzDecode5 \
                ./codec:FuzzTopicName ./codec:FuzzTopicFilter ./fuzz:FuzzBrokerSession \
                ./fuzz:FuzzListenerStreams ./engine:FuzzProxyHeader

# CI's short run: an execution count per target (about 10 s each here), not a
# duration: Go 1.26's fuzz coordinator can fail a duration run at its
# deadline with "context deadline exceeded" and no crasher (golang/go#75804,
# fixed in Go 1.27).
FUZZ_CI := ./codec:FuzzDecode31:500000x ./codec:FuzzDecode311:500000x ./codec:FuzzDecode5:500000x \
           ./codec:FuzzTopicName:500000x ./codec:FuzzTopicFilter:500000x ./fuzz:FuzzBrokerSession:2000x \
           ./fuzz:FuzzListenerStreams:300x ./engine:FuzzProxyHeader:30000x

.PHONY: help build run test test-short lint cover bench bench-codec soak fuzz fuzz-ci clean

help:
	@echo "make build        build $(BIN)"
	@echo "make run          build and start a broker on 127.0.0.1:1883 with its data in ./data"
	@echo "make test         vet, gofmt check, every test with -race (the interop suite also against a broker with a data directory), and the mosquitto-clients end-to-end check (what CI runs)"
	@echo "make cover        per-package statement coverage"
	@echo "make bench        the benchmark suite: every scenario against Tern, Mosquitto, mochi and the relay, interleaved, 3 rounds (about 30 min; SUITE_ARGS=\"-only fanin-qos0 -repeat 1\" narrows it); results, report.md and charts in perf/results/suite-<time>/"
	@echo "make bench-codec  codec micro-benchmarks and the side-by-side codec comparison"
	@echo "make soak         10 minutes of mixed load against a Tern, sampling RSS, goroutines and open files (SOAK_ARGS for flags)"
	@echo "make fuzz         run every fuzz target for FUZZTIME (default $(FUZZTIME)) each; make fuzz-ci: a short run of each (CI)"

build:
	$(GO) build -o $(BIN) ./cmd/tern

# A data directory in the work tree, so a restart keeps sessions, subscriptions
# and retained messages; the admin endpoint on a fixed loopback port.
run: build
	./$(BIN) serve --listen 127.0.0.1:1883 --allow-anonymous --data-dir ./data --admin-listen 127.0.0.1:18083

lint:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	cd perf && $(GO) vet ./...

test: lint build
	$(GO) test -race -count=1 $(PKGS)
	# Allocation counts, which the race detector's sync.Pool makes meaningless.
	$(GO) test -count=1 -run 'Allocs$$' ./codec ./router ./engine
	TERN_TEST_STORE=sync $(GO) test -race -count=1 ./conformance ./fuzz
	cd perf && $(GO) test -race -count=1 ./...
	bash test/e2e_mosquitto.sh
	bash test/e2e_ops.sh

test-short:
	$(GO) test -short -count=1 $(PKGS)

# kill -9 soak of the real binary (test/crash): TERN_CRASH_CYCLES kill points,
# default 200; TERN_CRASH_SEED=n replays the kill instants of a failed run.
.PHONY: crash-soak
crash-soak:
	TERN_CRASH_CYCLES=$${TERN_CRASH_CYCLES:-200} $(GO) test -count=1 -timeout 60m -run '^TestKill9$$' -v ./test/crash

cover:
	$(GO) test -count=1 -cover $(PKGS)

SUITE_ARGS ?=
bench:
	cd perf && $(GO) run ./cmd/suite $(SUITE_ARGS)

# Mixed load for 10 minutes with RSS, goroutines and open files sampled every
# 10 s (perf/cmd/soak); not part of make test.
SOAK_ARGS ?=
soak:
	cd perf && $(GO) run ./cmd/soak $(SOAK_ARGS)

bench-codec:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./codec/
	cd perf && $(GO) test -run '^$$' -bench . -benchmem -count 6 ./codeccompare/

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

fuzz-ci:
	@set -e; for t in $(FUZZ_CI); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; n=$${rest##*:}; \
		echo "== $$name ($$pkg) for $$n"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $$n $$pkg; \
	done

clean:
	rm -rf bin

# docs/configuration.md from the flags of tern serve (TestConfigReferenceUpToDate fails when it is stale).
.PHONY: docs
docs:
	$(GO) run ./cmd/tern gendocs
