# keras-vae: `make run` trains, evaluates and exports the default model; `make test` tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
FASHION_MNIST_DIR := /usr/share/datasets/fashion-mnist
RUN_DIR := runs/default

.PHONY: run test install data fashion-mnist-files train lint clean

run: train
	@echo "Done. The default model's run folder is $(abspath $(RUN_DIR))."

test: install fashion-mnist-files
	$(PY) -m pytest

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	$(VENV)/bin/pip check
	touch $@

# Debian's dataset-fashion-mnist holds the genuine Fashion-MNIST IDX files.
fashion-mnist-files:
	@if [ ! -f $(FASHION_MNIST_DIR)/train-images-idx3-ubyte.gz ]; then \
	  if ! command -v apt-get >/dev/null; then \
	    echo "No apt-get here: put the Fashion-MNIST IDX files in $(FASHION_MNIST_DIR)," \
	         "or train with --idx-dir DIR."; exit 1; fi; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO="sudo -n"; \
	  echo "Installing Debian's dataset-fashion-mnist ..."; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	fi

data: install fashion-mnist-files
	$(PY) -m keras_vae.data prepare fashion_mnist

train: data
	$(PY) -m pipelines.train --config pipelines/configs/default.toml --run-dir $(RUN_DIR) --overwrite

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) runs .pytest_cache
