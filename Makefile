# h2crop developer entry points. Only Python (>= 3.10) is needed beforehand:
# `make install` creates .venv in the checkout and installs everything there.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.h2crop-installed
DEMO_DATA ?= data/demo
DEMO_WORK ?= work_dirs/demo
PYTEST_ARGS ?=

.PHONY: install test demo demo-region clean-demo

install: $(STAMP)

# Reinstall only when the package metadata changes; the editable install
# picks up code changes by itself.
$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[tests]'
	$(PY) -c "import h2crop, torch, torchvision, timm, mmengine, mmcv, mmseg.evaluation"
	touch $(STAMP)

test: install
	$(PY) -m pytest tests $(PYTEST_ARGS)

demo: install
	$(PY) tools/demo.py --data-root $(DEMO_DATA) --work-dir $(DEMO_WORK)

demo-region: install
	$(PY) tools/demo_region.py

clean-demo:
	rm -rf $(DEMO_WORK)
