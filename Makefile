# agentplane: `make serve` installs and starts the server; `make test` installs and runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROTOS := $(shell find proto/agentplane -name "*.proto" | sort)
STAMP := $(VENV)/.installed
BUF := proto/node_modules/.bin/buf
TS := clients/typescript
PROTOC_GEN_ES := $(TS)/node_modules/.bin/protoc-gen-es
OTLP_JS := tests/otlp_js
OTLP_JS_STAMP := $(OTLP_JS)/node_modules/.installed

.PHONY: install serve test test-postgres test-ts gen gen-check lint lint-proto typecheck check bench chaos clean \
	browser otlp-js swagger-ui screenshots

# (Re)install when the venv is missing or a project file changed.
$(STAMP): pyproject.toml clients/python/pyproject.toml
	@echo "Installing agentplane into $(VENV) (about a minute the first time)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install --progress-bar on -e clients/python -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

serve: install
	$(VENV)/bin/agentplane serve

# The suite runs on two workers per core (pytest-xdist): many tests wait on servers and
# subprocesses, so two per core keep the cores busy. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) * 2 )))
test: install browser otlp-js
	$(PY) -m pytest -n $(TEST_WORKERS)

# The same suite against PostgreSQL (the local server unless told otherwise).
test-postgres: install browser otlp-js
	AGENTPLANE_TEST_POSTGRES_URL=$${AGENTPLANE_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} $(PY) -m pytest -n $(TEST_WORKERS)

# Rebuild generated/ from proto/ (messages, gRPC stubs, typed .pyi, and a
# descriptor set with comments that the gateway turns into API docs), and the
# TypeScript client's src/gen (protoc-gen-es).
gen: install $(PROTOC_GEN_ES)
	$(PY) proto/generate.py $(PROTOS)

gen-check: gen
	@git diff --exit-code --stat -- generated clients/python/src $(TS)/src/gen && \
	  test -z "$$(git status --porcelain -- generated $(TS)/src/gen)" || \
	  { echo "generated/ is stale: run 'make gen' and commit it"; exit 1; }

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports   # the layers and families contracts in pyproject.toml

# buf (pinned in proto/package.json, from npm): lint and format of the protos.
$(BUF): proto/package.json proto/package-lock.json
	# `npm install`, not `npm ci`: npm 11 leaves other platforms' optional packages out of
	# the lock file and `npm ci` then refuses it; the version is pinned exactly anyway.
	npm install --prefix proto --no-save --no-audit --no-fund --loglevel=error
	touch $(BUF)

# The TypeScript client's tools and runtime (protoc-gen-es, tsc, Connect), pinned in
# its package.json and lock file (no platform-specific packages, so `npm ci` works;
# --prefer-offline installs from npm's cache when it has them).
$(PROTOC_GEN_ES): $(TS)/package.json $(TS)/package-lock.json
	npm ci --prefix $(TS) --prefer-offline --no-audit --no-fund --loglevel=error
	touch $(PROTOC_GEN_ES)

# The OpenTelemetry JS SDK with its OTLP http/json exporters (pinned in tests/otlp_js's
# package.json and lock file), which tests/e2e/test_otlp_js.py drives as Claude Code does.
otlp-js: $(OTLP_JS_STAMP)

$(OTLP_JS_STAMP): $(OTLP_JS)/package.json $(OTLP_JS)/package-lock.json
	npm ci --prefix $(OTLP_JS) --prefer-offline --no-audit --no-fund --loglevel=error
	touch $(OTLP_JS_STAMP)

# The TypeScript client: tsc (strict) build, then Node tests against a real server.
test-ts: install $(PROTOC_GEN_ES)
	AGENTPLANE_BIN=$${AGENTPLANE_BIN:-$(abspath $(VENV))/bin/agentplane} npm test --prefix $(TS) --silent

lint-proto: $(BUF)
	$(BUF) lint
	$(BUF) format -d --exit-code --path proto/agentplane

# Wire/JSON compatibility of the protos against main (run it on a branch).
breaking: $(BUF)
	$(BUF) breaking --against '.git#branch=main'

typecheck: install
	$(VENV)/bin/mypy
	cd clients/python && ../../$(VENV)/bin/mypy --strict src/agentplane_client

check: gen-check lint lint-proto typecheck test-ts test

bench: install browser
	$(PY) -m tests.bench.run $(BENCH_ARGS)

# The reliability suite (tests/chaos): kill -9 cycles, followers, catch-up,
# overload, bad input, retries on SQLite and PostgreSQL. CHAOS_ARGS=--short: the CI form.
chaos: install
	$(PY) -m tests.chaos.run $(CHAOS_ARGS)

# The browser the console's tests (tests/browser), its benchmark and `make screenshots`
# drive through Playwright: Debian's chromium (Playwright cannot download its own here).
CHROMIUM ?= /usr/bin/chromium
browser: $(CHROMIUM)

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "install Chromium as $(CHROMIUM) (or set CHROMIUM=path)"; exit 1; }
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core

# Swagger UI for /docs, served from the package (gateway/console/vendor/swagger-ui),
# never from a CDN: `make swagger-ui` replaces the committed copy with the pinned release.
SWAGGER_UI_VERSION := 5.35.0
SWAGGER_UI := gateway/console/vendor/swagger-ui
swagger-ui:
	rm -rf $(SWAGGER_UI) /tmp/agentplane-swagger-ui && mkdir -p $(SWAGGER_UI) /tmp/agentplane-swagger-ui
	cd /tmp/agentplane-swagger-ui && npm pack --silent swagger-ui-dist@$(SWAGGER_UI_VERSION) >/dev/null && tar xzf swagger-ui-dist-*.tgz
	cp /tmp/agentplane-swagger-ui/package/swagger-ui-bundle.js /tmp/agentplane-swagger-ui/package/swagger-ui.css \
	  /tmp/agentplane-swagger-ui/package/LICENSE $(SWAGGER_UI)/
	echo $(SWAGGER_UI_VERSION) > $(SWAGGER_UI)/VERSION
	rm -rf /tmp/agentplane-swagger-ui

# The console's screenshots in docs/ (shown in the README), from a seeded server.
screenshots: install browser
	$(PY) -m tests.browser.screenshots

clean:
	rm -rf $(VENV) proto/node_modules $(TS)/node_modules $(OTLP_JS)/node_modules $(TS)/dist .pytest_cache .mypy_cache .ruff_cache
