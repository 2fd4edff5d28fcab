# Two commands on a fresh machine with only Python, pip and make:
#   make run   -- set up .venv if needed, install, run the main job
#   make test  -- set up .venv if needed, install, run the test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PIP_FLAGS := --disable-pip-version-check --quiet

.PHONY: run test test-slow bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) -c constraints.txt -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/entrolab study configs/lorenz-quick.toml --out runs/lorenz-quick

# two workers, one test file each at a time (module fixtures are built once): most tests are
# bound by XLA compilation, which runs on one core
test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

bench: $(STAMP)
	$(PY) benchmarks/envs.py

clean:
	rm -rf $(VENV) runs .pytest_cache
