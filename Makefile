# egov-trust: every target installs what it needs first, so a fresh machine needs only `make demo` / `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTO_OUT := libs/egov_protos

.PHONY: install system-deps protos protos-check lint test run demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages the tests and the demo use (SoftHSM2, poppler, qpdf, Thai fonts, NSS tools,
# Chromium). Installs only what is missing; needs root or sudo.
system-deps:
	@bash .ci/install-system-packages

protos: install
	rm -rf $(PROTO_OUT)/egov
	$(BIN)/python -m grpc_tools.protoc -Iprotos \
	    --python_out=$(PROTO_OUT) --pyi_out=$(PROTO_OUT) --grpc_python_out=$(PROTO_OUT) \
	    $$(cd protos && find egov -name '*.proto' | sort)
	$(BIN)/python -m egov_common.protogen_init $(PROTO_OUT)/egov

# Fails when the committed generated code differs from a fresh generation.
protos-check: protos
	@git diff --exit-code --stat -- $(PROTO_OUT) || { echo "generated code is stale: run 'make protos' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- $(PROTO_OUT))" || { git status --porcelain -- $(PROTO_OUT); echo "untracked generated files: run 'make protos' and commit"; exit 1; }

# mypy (strict) checks every library and service package.
SERVICES := identity keys registry signing verify_portal
SERVICE_PATH := libs:libs/egov_protos:services/identity:services/keys:services/registry:services/signing:services/verify_portal

lint: install
	$(BIN)/ruff check libs services tests
	MYPYPATH=$(SERVICE_PATH) $(BIN)/mypy $(addprefix -p egov_,common pki clients testing $(SERVICES))
	cd protos && ../$(BIN)/buf lint
	$(BIN)/lint-imports

test: install system-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

run: install
	$(BIN)/python -m egov_testing.devrun

# `make demo DEMO_ARGS="--keep-running"` leaves the platform up for the verify portal.
demo: install system-deps
	$(BIN)/python -m egov_testing.demo $(DEMO_ARGS)

# Every service's benchmark writes bench/results-<service>.json; the report puts them beside
# anchors measured on the same machine (bench/results.json, bench/RESULTS.md).
bench: install system-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/bench -o addopts="" $(PYTEST_ARGS)
	$(BIN)/python -m egov_testing.bench_report

clean:
	rm -rf $(VENV) .demo
