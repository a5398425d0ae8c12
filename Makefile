# Crier: everything a developer or CI needs, from a clone with only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-pooled test-dates test-faketime fuzz lint format bench clean install pds pgbouncer

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Crier needs Python 3.11 or newer; set PYTHON=python3.X")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/crier run

# The reference Bluesky server (@atproto/pds) and a PLC directory, which the Bluesky tests
# start on loopback: installed from the npm registry, at the versions tests/pds pins, into an
# ignored folder. Node.js 20 or newer with npm is needed (Debian's packages if missing).
PDS := .cache/pds
PDS_STAMP := $(PDS)/.installed

pds: $(PDS_STAMP)

$(PDS_STAMP): tests/pds/package.json tests/pds/package-lock.json
	@command -v npm >/dev/null || apt-get install -y -q nodejs npm
	@mkdir -p $(PDS)
	cp tests/pds/package.json tests/pds/package-lock.json $(PDS)/
	cd $(PDS) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# PgBouncer, which the suite starts in transaction pooling mode in front of its PostgreSQL:
# Debian's package (and the libraries it needs beyond a base system), unpacked into an
# ignored folder, neither installed nor started as a service.
PGBOUNCER := .cache/pgbouncer
PGBOUNCER_STAMP := $(PGBOUNCER)/.installed

pgbouncer: $(PGBOUNCER_STAMP)

$(PGBOUNCER_STAMP):
	@rm -rf $(PGBOUNCER) && mkdir -p $(PGBOUNCER)/root
	cd $(PGBOUNCER) && apt-get download -q pgbouncer libc-ares2 libevent-2.1-7
	cd $(PGBOUNCER) && for deb in *.deb; do dpkg-deb -x "$$deb" root; done
	@touch $@

# The whole suite, then the critical paths again with the API and the workers connecting
# through PgBouncer in transaction pooling mode (docs/scaling.md). That second pass always
# runs on the embedded server, whose logins are the roles themselves, even when the first
# ran on the server DATABASE_URL names.
POOLED_SUITES ?= tests/scheduler tests/post tests/delivery tests/webhook tests/auth
POOLED := env -u DATABASE_URL -u CRIER_DATABASE_URL -u CRIER_APP_DATABASE_URL CRIER_TEST_POOLER=pgbouncer

test: $(STAMP) $(PDS_STAMP) $(PGBOUNCER_STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)
	$(POOLED) $(BIN)/pytest $(PYTEST_ARGS) $(POOLED_SUITES)

test-pooled: $(STAMP) $(PDS_STAMP) $(PGBOUNCER_STAMP)
	$(POOLED) $(BIN)/pytest $(PYTEST_ARGS) $(POOLED_SUITES)

# The whole suite as if run at each of these instants: a new year, a month's 1st, New
# Year's Eve at 23:30 UTC, 29 February, and the morning New York leaves daylight saving time
# (05:30 UTC is 01:30 EDT, in the hour that repeats). `test-dates` starts every test clock
# there (CRIER_TEST_NOW); `test-faketime` moves the clock of every process there instead,
# PostgreSQL and the workers a test starts included, by one offset from now, with Debian's
# faketime (installed if missing).
DATES ?= 2027-01-01T00:00:00Z 2027-12-31T23:30:00Z 2028-02-29T12:00:00Z 2027-11-07T05:30:00Z 2027-03-01T00:10:00Z

test-dates: $(STAMP) $(PDS_STAMP)
	@for at in $(DATES); do echo "== CRIER_TEST_NOW=$$at"; \
		CRIER_TEST_NOW=$$at $(BIN)/pytest -q $(PYTEST_ARGS) || exit 1; done

test-faketime: $(STAMP) $(PDS_STAMP)
	@command -v faketime >/dev/null || apt-get install -y -q faketime
	@for at in $(DATES); do \
		offset=$$(( $$(date -u -d "$$at" +%s) - $$(date -u +%s) )); \
		echo "== faketime $$at (every process, +$$offset s)"; \
		TZ=UTC faketime -f "+$$offset" $(BIN)/pytest -q $(PYTEST_ARGS) || exit 1; done

# Schemathesis over every operation of the OpenAPI description, against a fresh server (a
# few minutes; CRIER_FUZZ_SECONDS sets the budget, CRIER_FUZZ_SEED replays a run).
fuzz: $(STAMP)
	$(BIN)/python -m fuzz

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
