# The README's two commands: `make run` (dashboard on the sample) and `make test`.
# Both create .venv when missing and install what they need.
VENV    ?= .venv
PY      := $(VENV)/bin/python
CLI     := $(VENV)/bin/pretrain-audit
PORT    ?= 8501
SAMPLE  ?= sample-workspace
PYTHON  ?= python3

.PHONY: install run test test-fast ci lint browser bench clean-sample

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e ".[test]"
	@touch $@

install: $(VENV)/.installed

$(SAMPLE)/audit.toml: | install
	$(CLI) sample $(SAMPLE)

# prepare is resumable and a no-op once the embeddings are cached.
run: install $(SAMPLE)/audit.toml
	$(CLI) prepare $(SAMPLE)
	$(CLI) dashboard $(SAMPLE) --port $(PORT)

# Debian chromium drives the real-browser tests; installed when missing and we are root.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "chromium not found: browser tests will be skipped. Install it with: sudo apt-get install chromium"; \
	fi

test: install browser
	$(PY) -m pytest -q

# The inner loop (a few minutes): lint, then every test that needs no browser, no Dask cluster or S3 server and no
# ../shared/real. CI still runs everything: finish with `make ci`.
test-fast: lint
	$(PY) -m pytest -q -m "not browser and not cluster and not real_data" --durations=10

# CI on the committed HEAD: a fresh clone beside a copy of ../shared, `.ci/run` as CI runs it (.ci/local).
ci:
	bash .ci/local

# ruff (lint, import order, format) on the whole tree; mypy on the engine and the CLI (pyproject.toml)
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: install
	$(PY) -m bench.run

clean-sample:
	rm -rf $(SAMPLE)
