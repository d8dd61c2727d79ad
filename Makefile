# The README's two commands are `make up` and `make test`; both set up what they
# need (apt packages, the virtualenv, images, the local registry) idempotently.
SHELL := /bin/bash
PY := .venv/bin/python
DATA ?= $(CURDIR)/.data

.PHONY: setup venv platform kubectl up down status test lint unit integration e2e bench vagrant-test conformance import-image

venv:
	./scripts/bootstrap.sh

platform:
	./scripts/setup-platform.sh

# kubectl: the pinned versions (tools/kubectl/versions.txt), built once from upstream's module.
kubectl: venv
	./scripts/install-kubectl.sh

setup: venv platform kubectl

up: setup
	./scripts/up.sh "$(DATA)"

down:
	./scripts/down.sh "$(DATA)"

test: setup
	./scripts/run-tests.sh

lint: venv
	.venv/bin/ruff check . && .venv/bin/mypy --explicit-package-bases pyk8s controlplane cri agent netproxy lab bench tests

unit: venv
	$(PY) -m pytest tests/unit -q

integration: setup
	$(PY) -m pytest tests/integration -q

e2e: setup
	$(PY) -m pytest tests/e2e -q

bench: setup
	for b in bench/*_bench.py; do $(PY) $$b; done

# Boots the real Vagrantfile under QEMU emulation with a locally built box (long; not in CI).
vagrant-test: setup
	./scripts/vagrant-test.sh

# Upstream's conformance suite (e2e.test v1.31, built from conformance/) against a 2-node lab
# (or $KUBECONFIG); long, not in CI. FOCUS='\[sig-node\].*Conformance' runs one area.
conformance: setup
	./scripts/conformance.sh

# An OCI or Docker archive into the local registry: make import-image FILE=x.tar [REF=nginx:1.25]
import-image:
	./scripts/images/import.sh "$(FILE)" $(REF)
