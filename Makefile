# Two commands for a new user: `make figures` (install, run every experiment on the default profile, draw)
# and `make test`. Both depend on .venv, which is made once: the directory is the stamp, touched last.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= default
JOBS ?= 2
# `make test` spreads the tests over TEST_JOBS pytest-xdist workers (loadgroup: test by test, except the files marked
# xdist_group, which stay on one worker for their module fixtures); TEST_JOBS=0 runs them in this one process
TEST_JOBS ?= 2
CHECK_PROFILE ?= quick
RESULTS ?= results

.PHONY: figures run test bench quick check clean notebooks report chromium

$(VENV): pyproject.toml
	@echo "installing into $(VENV) with $(PYTHON) (torch pinned to 2.13.0, CPU build)"
	@$(PYTHON) -m venv $(VENV) && \
	  $(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]' && touch $(VENV) || \
	  { rm -rf $(VENV); echo "install failed; $(VENV) removed"; exit 1; }

run: $(VENV)
	$(BIN)/sslt run all --profile $(PROFILE) --jobs $(JOBS) --out $(RESULTS)

figures: run
	$(BIN)/sslt figures --out $(RESULTS) --jobs $(JOBS)

quick:
	$(MAKE) figures PROFILE=quick

test: $(VENV)
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadgroup

# make check ASSUMPTION=examples/assumptions/contrastive_zipf37.toml [CHECK_PROFILE=default]
check: $(VENV)
	@test -n "$(ASSUMPTION)" || { echo "usage: make check ASSUMPTION=path/to/assumption.toml"; exit 2; }
	$(BIN)/sslt check $(ASSUMPTION) --profile $(CHECK_PROFILE) --jobs $(JOBS)

bench: $(VENV)
	$(BIN)/sslt bench

# Teaching material. `make notebooks` executes every chapter notebook (notebooks/<chapter>.py, jupytext py:percent)
# and renders it to docs/notebooks/<chapter>.html; `make report` first makes the $(PROFILE) runs of every chapter
# (`make run`: cells already done are reused), then writes the theorem atlas (report/index.html) from the latest run
# of each chapter with that profile in $(RESULTS)/, and opens every page in headless Chromium to check it.
NOTEBOOKS := $(filter-out notebooks/_%,$(wildcard notebooks/*.py))
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The pages load MathJax from a copy beside them (jupyter-server-mathjax's, in docs/notebooks/mathjax/) through the
# template notebooks/_offline (the lab template without its CDN scripts): nothing comes from the network.
MATHJAX_SRC = $(shell $(BIN)/python -c "import jupyter_server_mathjax, pathlib; \
  print(pathlib.Path(jupyter_server_mathjax.__file__).parent / 'static')" 2>/dev/null)

notebooks: $(VENV)
	@mkdir -p docs/notebooks
	@test -d "$(MATHJAX_SRC)" || { echo "no MathJax copy: pip install jupyter-server-mathjax (the test extras)"; exit 1; }
	@rm -rf docs/notebooks/mathjax && cp -r $(MATHJAX_SRC) docs/notebooks/mathjax
	@for nb in $(NOTEBOOKS); do \
	  name=$$(basename $$nb .py); echo "notebook $$name"; \
	  $(BIN)/jupytext --quiet --to notebook --output docs/notebooks/$$name.ipynb $$nb && \
	  $(BIN)/jupyter nbconvert --log-level=WARN --execute --to html --ExecutePreprocessor.timeout=120 \
	    --TemplateExporter.extra_template_basedirs=notebooks --template _offline \
	    --HTMLExporter.mathjax_url='mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe' \
	    --output $$name docs/notebooks/$$name.ipynb || exit 1; \
	  rm -f docs/notebooks/$$name.ipynb; \
	done

chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { echo "installing chromium (Debian package) for the atlas check"; \
	    $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }

# --check opens every page of report/ and docs/notebooks/ in headless Chromium with the network blocked
report: $(VENV) chromium notebooks run
	$(BIN)/sslt report --out $(RESULTS) --site report --profile $(PROFILE) --check

clean:
	rm -rf results figures
