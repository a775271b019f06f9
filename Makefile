# Two commands for a new user: `make figures` (install, run every experiment on the default profile, draw)
# and `make test`. Both depend on .venv, which is made once: the directory is the stamp, touched last.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= default
JOBS ?= 2
CHECK_PROFILE ?= quick

.PHONY: figures run test bench quick check clean

$(VENV): pyproject.toml
	@echo "installing into $(VENV) with $(PYTHON) (torch pinned to 2.13.0, CPU build)"
	@$(PYTHON) -m venv $(VENV) && \
	  $(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]' && touch $(VENV) || \
	  { rm -rf $(VENV); echo "install failed; $(VENV) removed"; exit 1; }

run: $(VENV)
	$(BIN)/sslt run all --profile $(PROFILE) --jobs $(JOBS)

figures: run
	$(BIN)/sslt figures

quick:
	$(MAKE) figures PROFILE=quick

test: $(VENV)
	$(BIN)/python -m pytest

# make check ASSUMPTION=examples/assumptions/contrastive_zipf37.toml [CHECK_PROFILE=default]
check: $(VENV)
	@test -n "$(ASSUMPTION)" || { echo "usage: make check ASSUMPTION=path/to/assumption.toml"; exit 2; }
	$(BIN)/sslt check $(ASSUMPTION) --profile $(CHECK_PROFILE) --jobs $(JOBS)

bench: $(VENV)
	$(BIN)/sslt bench

clean:
	rm -rf results figures
