# h2crop developer entry points. Only Python (>= 3.10) is needed beforehand:
# `make install` creates .venv in the checkout and installs everything there,
# at the exact versions last tested (requirements/constraints.txt).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.h2crop-installed
CONSTRAINTS ?= requirements/constraints.txt
DEMO_DATA ?= data/demo
DEMO_WORK ?= work_dirs/demo
PYTEST_ARGS ?=
LINT_PATHS := h2crop tools tests configs setup.py

.PHONY: install lint format test demo demo-region demo-products clean-demo

install: $(STAMP)

# Reinstall only when the package metadata or the pinned versions change;
# the editable install picks up code changes by itself.
$(STAMP): setup.py $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e '.[tests]'
	$(PY) -c "import h2crop, torch, torchvision, timm, mmengine, mmcv, mmseg.evaluation, rasterio, pyogrio, shapely, pystac, odc.stac, xarray, dask, rioxarray"
	touch $(STAMP)

lint: install
	$(PY) -m ruff check $(LINT_PATHS)

# Apply the fixes ruff can make by itself (import order, ...).
format: install
	$(PY) -m ruff check --fix $(LINT_PATHS)

test: install
	$(PY) -m pytest tests $(PYTEST_ARGS)

# A second `make demo` replaces the previous demo run in $(DEMO_WORK).
demo: install
	$(PY) tools/demo.py --data-root $(DEMO_DATA) --work-dir $(DEMO_WORK) \
		--overwrite

demo-region: install
	$(PY) tools/demo_region.py --overwrite

# From downloaded products (synthetic S2 L2A SAFEs, EnMAP L2A) to a map.
demo-products: install
	$(PY) tools/demo_products.py --overwrite

clean-demo:
	rm -rf $(DEMO_WORK)
