# Two entry points (README, Quick start): `make scenarios` and `make test`.
# Both create .venv with python3, install the project with its pinned dependencies
# (constraints.txt), then run pytest: `make scenarios` the scenario suite (the main job),
# `make test` the framework's tests (what CI runs). Only python3 (with venv) and make are
# needed; `make test` also installs the Debian packages its tests use (system-deps: a real
# browser for the report, a Go toolchain for the non-Python example target) and builds
# that target. Long campaigns are targets of their own (campaign, matrix, fuzz).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: scenarios test lint detection venv proto bench clean chromium system-deps examples drivers campaign matrix

# Lint, format and type checks (also the first step of make test): zero findings; each
# exception is suppressed in place with its reason.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	@# pip's scratch (build envs, unpacked wheels) inside the venv, not in /tmp: pip
	@# removes it on Ctrl-C but not when killed (SIGTERM), and a killed install must
	@# leave nothing behind outside the checkout.
	mkdir -p $(VENV)/tmp
	TMPDIR=$(CURDIR)/$(VENV)/tmp $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	rm -rf $(VENV)/tmp
	touch $(STAMP)

venv: $(STAMP)

scenarios: $(STAMP)
	$(BIN)/python -m pytest scenarios/ $(PYTEST_ARGS)

# The framework's own tests, with every detection proof (tests/test_detection.py runs the
# scenarios each proof names under its weak profile or flawed server). What CI runs
# (.ci/run); the scenario suite itself is `make scenarios`, and its zero-flake record
# `make campaign`.
#
# Two pytest runs, to stay well inside CI's 15 minutes on 2 cores: the tests that start no
# fleet and time nothing (UNIT_TESTS) on both cores (pytest-xdist), then the rest one at a
# time (they start fleets and judge time bounds, so they get the machine to themselves).
# The shipped weak profiles' detection proofs (~3 min) are `make detection`.
UNIT_TESTS := tests/checks tests/test_artifact_paths.py tests/test_proto.py \
	tests/test_fuzz_schedule.py tests/test_judge.py tests/test_requirements.py \
	tests/test_advice.py tests/test_profiles.py tests/test_profile_check.py \
	tests/test_fuzz_cli.py tests/test_fuzz_oracle.py tests/test_fuzz_strategy.py \
	tests/test_matrix.py tests/test_public_api.py tests/test_target_file.py \
	tests/test_grpc_log.py tests/test_outcomes.py tests/test_layers.py tests/test_docs.py \
	tests/test_proxy_lag.py tests/test_hpack_cache.py tests/test_h2conn.py
test: $(STAMP) system-deps examples drivers
	@status=0; \
	$(BIN)/ruff check . || status=1; \
	$(BIN)/ruff format --check . || status=1; \
	$(BIN)/mypy || status=1; \
	$(BIN)/python -m pytest -n 2 $(UNIT_TESTS) $(PYTEST_ARGS) || status=1; \
	$(BIN)/python -m pytest tests/ -m "not shipped_profiles" \
		$(addprefix --ignore=,$(UNIT_TESTS)) $(PYTEST_ARGS) || status=1; \
	exit $$status

# Every detects mark of the catalogue proven under its shipped weak profile (naive,
# pick_first, outlier): the scenario fails, on the check it names.
detection: $(STAMP)
	$(BIN)/python -m pytest tests/test_detection.py -m shipped_profiles $(PYTEST_ARGS)

# Debian packages the tests use: chromium (tests/test_gate.py opens report.html in a real
# headless browser), Go with grpc-go (examples/go-good, a target in another language, and
# the go client driver) and golang.org/x/net (the compiled HTTP/2 point, chaos/http2/relay_go), Node.js (the node client driver) and a JDK with grpc-java 1.41 and
# its jars (the java client driver).
# The tests fail, never skip, without them. Installs only what is missing; needs root
# (CI runs as root) and Debian's archive.
DEBIAN_PACKAGES := chromium golang-go golang-golang-x-net-dev golang-golang-x-sys-dev golang-google-grpc-dev golang-goprotobuf-dev protobuf-compiler nodejs openjdk-17-jdk-headless protobuf-compiler-grpc-java-plugin libgrpc-java libnetty-java libprotobuf-java libguava-java libgoogle-gson-java libperfmark-java libjsr305-java
system-deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $$missing; \
	fi

chromium: system-deps

# The example targets that need building (examples/go-good: Go, offline, Debian's packages).
examples: system-deps
	$(MAKE) -C examples/go-good

# The shipped client drivers (docs/clients.md) and the compiled HTTP/2 point (docs/http2.md):
# go, java and the point built offline from Debian's
# packages (system-deps), node's @grpc/grpc-js installed from the npm registry
# as its lockfile pins (npm ci: the one download, here, never at run time). The python
# driver needs nothing.
drivers: $(STAMP) system-deps
	$(BIN)/python -c "from chaos.clients.drivers import go_build, java_build, node_build; \
		from chaos.http2 import go_build as point; \
		go_build.build(); node_build.install(); java_build.build(); point.build()"

# The zero-flake campaign (docs/reliability.md): the scenario suite RUNS times in
# a row, with BURNERS busy-loop processes beside it; every run's artifacts are kept.
RUNS ?= 20
BURNERS ?= 2
campaign: $(STAMP)
	$(BIN)/python -m chaos.gate.campaign --runs $(RUNS) --burners $(BURNERS) $(PYTEST_ARGS)

# The resilience matrix (docs/matrix.md): every scenario under every shipped profile, 3 times.
matrix: $(STAMP)
	$(BIN)/python -m chaos.gate.matrix --readme docs/matrix.md

proto: $(STAMP)
	$(BIN)/python proto/generate.py

bench: $(STAMP)
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

# A fuzz campaign (docs/fuzzing.md):
#   make fuzz [FUZZ_PROFILE=naive] [FUZZ_BUDGET=3m] [FUZZ_ARGS="--seed 7 --kinds kill,pause"]
FUZZ_PROFILE ?= recommended
FUZZ_BUDGET ?= 10m
FUZZ_ARGS ?=
.PHONY: fuzz
fuzz: $(STAMP)
	$(BIN)/python -m chaos.fuzz --budget $(FUZZ_BUDGET) --profile $(FUZZ_PROFILE) $(FUZZ_ARGS)
