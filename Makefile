# Redlite: `make` builds the extension and the server into dist/; `make test` runs every
# test (Rust unit and integration tests, then the Python suites against the built
# artifacts); `make run` starts the server on ./redlite.db; `make shell` opens sqlite3
# with the extension loaded.

CARGO      ?= cargo
# One target directory for both workspaces (the extension is its own workspace because
# its rusqlite features cannot be unified with the bundled SQLite of the server).
export CARGO_TARGET_DIR := $(CURDIR)/target
PYTHON     := /usr/bin/python3
VENV       := .venv
PY         := $(VENV)/bin/python
SO         := dist/libredlite.so
SERVER     := dist/redlite-server
PORT       ?= 6379
DB         ?= redlite.db

.PHONY: all build ext server floor test test-rust test-py venv run shell bench profile stress fuzz docs clean lint fmt

all: build

build: ext server

ext:
	$(CARGO) build --release --manifest-path ext/Cargo.toml
	mkdir -p dist
	cp target/release/libredlite.so $(SO)

server:
	$(CARGO) build --release -p redlite-server
	mkdir -p dist
	cp target/release/redlite-server $(SERVER)

# The stamp makes a change to tests/requirements.txt reinstall into an existing venv.
$(VENV)/.installed: tests/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r tests/requirements.txt
	touch $@

venv: $(VENV)/.installed

test: build venv test-rust test-py

# Release profile, so the bundled SQLite is compiled once for the server and the tests.
test-rust:
	$(CARGO) test --release --workspace

test-py: venv
	$(PY) -m pytest -q --timeout=300 tests

# COMMANDS.md is generated from the command tables and the script files.
docs:
	REDLITE_WRITE_DOCS=1 $(CARGO) test --release -p redlite-server --test command_docs

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --manifest-path ext/Cargo.toml -- -D warnings

fmt:
	$(CARGO) fmt --all
	$(CARGO) fmt --manifest-path ext/Cargo.toml

run: server
	$(SERVER) --dir . --dbfilename $(DB) --port $(PORT)

shell: ext
	sqlite3 -cmd ".load ./$(SO)" $(DB)

# The raw-SQLite floor the server benchmarks run beside Redis (server/examples/sqlite_floor.rs).
floor:
	$(CARGO) build --release -p redlite-server --example sqlite_floor
	mkdir -p dist
	cp target/release/examples/sqlite_floor dist/sqlite-floor

bench: build floor venv
	$(PY) bench/run.py

# Where the server spends its time under SET and GET load (perf), into bench/PROFILES.md.
profile: build
	bench/profile.sh

# Longer runs of what `make test` runs briefly: kill -9 crash tests, the differential
# fuzzer against real Redis, and a minute of each cargo-fuzz target (STRESS_SECONDS each).
STRESS_SECONDS ?= 60
stress: build venv
	CRASH_SECONDS=$(STRESS_SECONDS) $(PY) -m pytest -q -s tests/test_crash.py
	cd tests && ../$(PY) fuzz_differential.py --seconds $(STRESS_SECONDS)
	$(MAKE) fuzz FUZZ_SECONDS=$(STRESS_SECONDS)

# cargo-fuzz needs the nightly toolchain (sanitizers); targets are in fuzz/, seed
# corpora in fuzz/corpus/<target>. Run one longer: cd fuzz && cargo +nightly fuzz run resp_parser
FUZZ_SECONDS ?= 60
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd fuzz && for t in resp_parser command; do \
	  CARGO_TARGET_DIR=$(CURDIR)/fuzz/target $(CARGO) +nightly fuzz run $$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

clean:
	rm -rf dist $(VENV)
	$(CARGO) clean
