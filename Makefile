# Two commands do all the set-up themselves: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
export MUJOCO_GL ?= egl

.PHONY: install demo test results clean

install: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $@

demo: install  ## the project's main job (make demo SEED=1 for another seed; default 0)
	$(PY) -m tools.demo --seed $(or $(SEED),0)

test: install  ## the test suite (what CI runs)
	$(PY) -m pytest -q

results: install  ## regenerate results tables, figures and README sections
	$(PY) -m tools.results

clean:
	rm -rf $(VENV)
