# Slipway's developer entry points. Every target installs what it needs first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install lint format test test-unit test-cluster binaries demo demo-capabilities demo-web bench cluster cluster-down \
        cluster-status kind clean crds node-tools browser argocd argocd-down argocd-build redis-server \
        node-packages node-binaries images cluster-real test-real

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,tools]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)  ## virtualenv with slipway and the dev tools

# The JavaScript tool's packages (npm ci, from its lock); without node its tests are skipped.
JS_TOOL := tasks/checknumber-js
$(JS_TOOL)/node_modules/.package-lock.json: $(JS_TOOL)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix $(JS_TOOL) --no-audit --no-fund; \
	else echo "npm not found: the tests of $(JS_TOOL) will be skipped"; fi

# The browser tests' accessibility checker (axe-core, from its lock; injected by the tests).
BROWSER_TESTS := tests/browser
$(BROWSER_TESTS)/node_modules/.package-lock.json: $(BROWSER_TESTS)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix $(BROWSER_TESTS) --no-audit --no-fund; \
	else echo "npm not found: the browser tests will be skipped"; fi

node-tools: $(JS_TOOL)/node_modules/.package-lock.json $(BROWSER_TESTS)/node_modules/.package-lock.json

# The browser tests drive Debian's chromium with Playwright (no browser download).
browser:  ## install chromium (apt-get) when it is missing
	@command -v chromium >/dev/null 2>&1 || { apt-get update && apt-get install -y chromium; }

lint: install  ## ruff, mypy --strict, the import-linter layer contract
	$(BIN)/ruff check operator tests tasks bench
	$(BIN)/ruff format --check operator tests tasks bench
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix operator tests tasks bench
	$(BIN)/ruff format operator tests tasks bench

crds: install  ## regenerate crds/*.yaml and docs/reference.md from operator/slipway/api/
	$(BIN)/python -m slipway.api.crds .

binaries: install  ## find or build (once, cached) the local control plane's binaries
	$(BIN)/slipway dev cluster build

test: lint binaries node-tools browser argocd-build  ## lint, unit tests, tests on the local control plane (CI also runs test-real)
	$(BIN)/pytest -m "not real"

test-unit: install node-tools  ## only the tests that need no cluster
	$(BIN)/pytest -m "not cluster and not real"

test-cluster: binaries node-tools browser argocd-build
	$(BIN)/pytest -m cluster

demo: binaries  ## the main job: a run triggered over HTTP, two tools, a linked run
	$(BIN)/python tasks/demo/run_demo.py

demo-capabilities: binaries  ## the seed's two capabilities with real tools: a phone number, three photos
	$(BIN)/python tasks/demo/capabilities.py

demo-web: binaries  ## the web page with both capabilities and the real tools, until Ctrl-C
	$(BIN)/python tasks/demo/web.py

bench: binaries  ## figures (not assertions): hops, writes and CPU per task, memory; ARGS="--stored 10000"; ARGS="--load": the load bench; REPLICAS=3: 1, 2, 3 replicas
	$(BIN)/python bench/bench_runs.py $(if $(REPLICAS),--replicas $(REPLICAS)) $(ARGS)

cluster: binaries  ## start (or reuse) the local control plane
	$(BIN)/slipway dev cluster up

# The real node and the image builds use Debian's packages; installed when one is missing.
NODE_PACKAGES := containerd runc containernetworking-plugins iptables buildah mmdebstrap
node-packages:
	@missing=""; for p in $(NODE_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi

images: install node-packages  ## the base image (mmdebstrap) and every Dockerfile's image (buildah), cached
	$(BIN)/python -m slipway.devcluster.images

node-binaries: install node-packages  ## the control plane's binaries and the real node's (kubelet, kube-proxy, pause)
	$(BIN)/slipway dev cluster build --real-node

cluster-real: node-binaries images  ## the local control plane with a real node (containerd, kubelet)
	$(BIN)/slipway dev cluster up --real-node

test-real: node-binaries images node-tools  ## real containers on the real node (tests/real/)
	$(BIN)/pytest -m real

cluster-down: install  ## stop it (and the real node); no process is left behind, nothing mounted
	$(BIN)/slipway dev cluster down

cluster-status: install
	$(BIN)/slipway dev cluster status

# Argo CD beside the local control plane (docs/argocd.md): Redis from Debian, the repo-server
# and the application-controller built once from tools/argocd/ (cached like the control plane).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { $(SUDO) apt-get update && \
		$(SUDO) apt-get install -y --no-install-recommends redis-server; }

argocd-build: install redis-server  ## find or build (once, cached) Argo CD for the GitOps tests
	$(BIN)/slipway dev argocd build

argocd: binaries argocd-build  ## start (or reuse) Argo CD against the local control plane
	$(BIN)/slipway dev cluster up
	$(BIN)/slipway dev argocd up

argocd-down: install  ## stop Argo CD and remove its objects; the control plane keeps running
	$(BIN)/slipway dev argocd down

kind:  ## for people with Docker: a kind cluster instead of the local control plane
	kind create cluster --name slipway
	kubectl apply -f crds/

# The operator's image, for a real cluster (docs/install.md), with Docker. On this project's
# machines (no Docker), `make images` builds it (and the tools' images) with buildah.
IMAGE ?= slipway:dev
.PHONY: image
image:  ## build the operator's image: make image IMAGE=registry.example/slipway:0.1.0
	docker build --tag $(IMAGE) .

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
