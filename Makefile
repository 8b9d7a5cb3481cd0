# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
FLASK = $(BIN)/flask --app wsgi
PYTEST_ARGS ?=
# Where `make run` serves; exported so that seed-demo prints the same address.
export PORT ?= 8000

.PHONY: run test test-fast install install-dev migrate seed lint worker bench bench-peer reliability clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/activate
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/activate
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $(VENV)/.runtime $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

migrate: install
	$(FLASK) db upgrade

seed: migrate
	$(FLASK) seed-demo

## Serve the storefront API, /admin/ and the docs on http://127.0.0.1:$(PORT) (default 8000)
run: seed
	$(FLASK) run --host 127.0.0.1 --port $(PORT) --with-threads

## The whole test suite (PostgreSQL/Redis tests run when TEST_DATABASE_URL/REDIS_URL are set)
test: install-dev
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2 --dist loadgroup -rs $(PYTEST_ARGS)

## Everything but the browser (e2e) and slow tests: the loop to run while you work (under a minute)
test-fast: install-dev
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2 --dist loadgroup -rs -m "not e2e and not slow" $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .

worker: install
	$(FLASK) worker

## Benchmarks against the machine's PostgreSQL and Redis (figures: bench/RESULTS.md)
bench: install-dev
	$(BIN)/python -m bench.run_all

# The peer bench's own virtualenv: django-oscar + oscarapi, never installed anywhere else.
PEER_VENV ?= .venv-peer
PEER_ARGS ?=

$(PEER_VENV)/.installed: requirements-peer.txt
	test -x $(PEER_VENV)/bin/python || $(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/pip install -q -r requirements-peer.txt
	touch $@

## The app against django-oscar 4.2 + oscarapi 3.3 on the same catalog (figures: bench/RESULTS.md);
## PEER_ARGS="--seconds 3 --rounds 1" for a short run
bench-peer: install-dev $(PEER_VENV)/.installed
	$(BIN)/python -m bench.peer_bench $(PEER_ARGS)

## The reliability suite: bounded, loopback only; non-zero exit if anything is lost
reliability: install-dev
	@# The multi-node scenario puts two web nodes behind Debian's HAProxy.
	@test -x /usr/sbin/haproxy || command -v haproxy >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null)
	$(BIN)/python -m reliability.run

clean:
	rm -rf $(VENV) $(PEER_VENV) instance/*.sqlite3 test-artifacts
