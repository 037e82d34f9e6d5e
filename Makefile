# The two set-up commands of the README: `make demo` (the main job) and `make test`.
# Both create the virtual environment in .venv on first use and reinstall when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: demo test lint browser postgres

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# `make demo PORT=8080` serves on another port (checked before the build: a busy port is reported at once).
demo: $(STAMP)
	$(VENV)/bin/stylerec demo --port $(PORT)

# The browser test drives the system Chromium (nothing downloads a browser); it skips when none can be installed.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		(DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 && echo "installed chromium") || \
		echo "no chromium: the browser test will skip"

# The PostgreSQL tests start a private cluster from Debian's package; they skip when none can be installed.
postgres:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		(apt-get update -q >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null 2>&1 && echo "installed postgresql") || \
		echo "no postgresql: the PostgreSQL tests will skip"

test: $(STAMP) browser postgres
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
