"""Training throughput of keras-vae's `fit` beside the keras.io recipe and PyTorch.

Every contender trains the same network (the default preset's) on the same
Fashion-MNIST training images with the same batch size, in one process with
the same thread settings. The contenders take turns: each round times one
window of steps of each, so a slow spell of a shared machine hits all of them,
and ratios are taken within a round. Each window starts after its first step,
so iterator start-up is left out; the first round (tracing, warm-up) is not
counted.
"""

import statistics
import time

import keras
import numpy as np

import keras_vae
from keras_vae.architectures import coarse_map_side
from keras_vae.data import image_source
from keras_vae.run import RunData, build_model, build_optimizer
from keras_vae.run_config import RunConfig

from .keras_io_recipe import build_keras_io_vae

# Each convolution and its matrix-product form (`keras_vae.matmul_conv`).
MATMUL_FORMS = {"Conv2D": "MatmulConv2D", "Conv2DTranspose": "MatmulConv2DTranspose"}


class _StepClock(keras.callbacks.Callback):
    """Records `(steps done, time)` at the end of every executed batch of steps."""

    def on_train_begin(self, logs=None):
        self.marks = []

    def on_train_batch_end(self, batch, logs=None):
        self.marks.append((batch + 1, time.perf_counter()))


class KerasContender:
    """Times windows of `model.fit` on `data`.

    Args:
        name: label in the results.
        model: a compiled Keras model.
        data: a `tf.data.Dataset` of batches, or a NumPy array.
        batch_size: examples per step.
    """

    def __init__(self, name, model, data, batch_size):
        self.name = name
        self.model = model
        self.data = data
        self.batch_size = batch_size
        self.steps_per_execution = model.steps_per_execution
        self.losses = []

    def window(self, steps):
        """Trains about `steps` steps after a first one; returns (examples, seconds)."""
        per_call = self.steps_per_execution
        calls = max(1, round(steps / per_call))
        clock = _StepClock()
        options = {} if not isinstance(self.data, np.ndarray) else {"batch_size": self.batch_size}
        history = self.model.fit(
            self.data,
            steps_per_epoch=(calls + 1) * per_call,
            epochs=1,
            verbose=0,
            callbacks=[clock],
            **options,
        )
        self.losses.append(float(np.ravel(history.history["loss"][-1])[0]))
        (first_step, started), (last_step, ended) = clock.marks[0], clock.marks[-1]
        return (last_step - first_step) * self.batch_size, ended - started


class TorchContender:
    """Times windows of the PyTorch loop (`torch_vae.TorchTrainer`) on a model of
    `torch_vae.MODELS`."""

    def __init__(self, name, images, batch_size, seed, model="fashion_mnist_conv"):
        from .torch_vae import TorchTrainer

        self.name = name
        self.trainer = TorchTrainer(images, batch_size, seed=seed, model=model)
        self.batch_size = batch_size
        self.steps_per_execution = 1
        self.losses = []

    def window(self, steps):
        """Trains `steps` steps after a first one; returns (examples, seconds)."""
        self.trainer.step()
        losses = []
        started = time.perf_counter()
        for _ in range(steps):
            self.trainer.step()
            losses.append(self.trainer.last_loss)
        seconds = time.perf_counter() - started
        self.losses.append(float(np.mean(losses)))
        return steps * self.batch_size, seconds


def input_pipeline_rate(dataset, steps, batch_size):
    """Examples per second the `tf.data` pipeline alone delivers, after its first batch."""
    iterator = iter(dataset)
    next(iterator)
    started = time.perf_counter()
    for _ in range(steps):
        next(iterator)
    return steps * batch_size / (time.perf_counter() - started)


def default_training_stream(batch_size, seed=0, max_examples=None, data_options=None):
    """Fashion-MNIST as the default run streams it (`keras_vae.run.RunData` of a
    default `RunConfig`): endless, dynamically binarised.

    Args:
        batch_size: examples per batch; the last partial batch of an epoch is dropped.
        seed: seed of data order and binarisation.
        max_examples: use only the first examples of the training split.
        data_options: more `RunConfig` fields of the data (`data_dir`, `idx_dir`).

    Returns:
        A tuple `(source, dataset)`: the image source and its training stream.
    """
    config = RunConfig(
        batch_size=batch_size, seed=seed, max_train_examples=max_examples, **(data_options or {})
    )
    data = RunData(config)
    return data.source, data.training_stream()


def default_model(seed=0, **compile_options):
    """The default run's model (`keras_vae.run.build_model` of a default `RunConfig`),
    initialised from `seed` and compiled with the run's optimizer.

    Args:
        seed: seed of the initial weights and the sampling noise.
        **compile_options: more `compile` arguments (`steps_per_execution`, `jit_compile`).

    Returns:
        A compiled `keras_vae.VAE`.
    """
    config = RunConfig(seed=seed)
    keras.utils.set_random_seed(seed)
    model = build_model(config)
    model.compile(optimizer=build_optimizer(config), **compile_options)
    return model


def build_contenders(
    batch_size,
    steps_per_execution,
    seed=0,
    with_torch=True,
    xla=True,
    max_examples=None,
    data_options=None,
):
    """Builds the contenders, each on the default network and the same images.

    keras-vae trains as `pipelines/train.py` does: the endless, dynamically
    binarised `tf.data` stream. The references get the binarised images of
    that stream's first epoch as one NumPy array, the way their tutorials feed
    data.

    Args:
        batch_size: examples per step.
        steps_per_execution: keras-vae's setting, as in `pipelines/train.py`.
        seed: seed of data order, binarisation, initial weights and noise.
        with_torch: whether to include the PyTorch loop.
        xla: whether to include keras-vae with `jit_compile=True`.
        max_examples: use only the first examples of the training split.
        data_options: more `RunConfig` fields of the data (`data_dir`, `idx_dir`).

    Returns:
        A tuple `(contenders, dataset)`: the list of contenders, keras-vae's first;
        and keras-vae's training dataset.
    """
    source, dataset = default_training_stream(batch_size, seed, max_examples, data_options)
    images = _first_epoch(source, dataset, batch_size, max_examples)

    contenders = [
        KerasContender(
            f"keras-vae fit (steps_per_execution={steps_per_execution})",
            default_model(seed, steps_per_execution=steps_per_execution),
            dataset,
            batch_size,
        )
    ]
    if steps_per_execution != 1:
        contenders.append(
            KerasContender(
                "keras-vae fit (steps_per_execution=1)", default_model(seed), dataset, batch_size
            )
        )
    if xla:
        contenders.append(
            KerasContender(
                "keras-vae fit (XLA)",
                default_model(seed, steps_per_execution=steps_per_execution, jit_compile=True),
                dataset,
                batch_size,
            )
        )
    keras.utils.set_random_seed(seed)
    contenders.append(KerasContender("keras.io recipe", build_keras_io_vae(), images, batch_size))
    if with_torch:
        contenders.append(TorchContender("PyTorch loop", images, batch_size, seed))
    return contenders, dataset


def build_vanilla_contenders(batch_size=64, seed=0, with_torch=True):
    """The VanillaVAE (`vanilla_vae_64`) in keras-vae and in its PyTorch form, on the
    Noto emoji (64x64 RGB) as `pipelines/configs/vanilla_vae_emoji.toml` trains it.

    keras-vae runs one step per call, as its training run does (an epoch of 53
    steps has no other divisor), with synchronised BatchNorm (exact under
    `tf.distribute`) and convolutions as one matrix product on 2x2 maps; then
    with oneDNN's kernels for both or one of those two convolutions, with the
    matrix product on maps up to 4x4, and with Keras' plain BatchNorm.

    Returns:
        A tuple `(contenders, dataset)`, as `build_contenders` returns them.
    """
    source = image_source("noto_emoji")
    dataset = source.load(
        "train", batch_size=batch_size, shuffle=True, seed=seed, drop_remainder=True,
        start_epoch=0,
    )  # fmt: skip
    images = _first_epoch(source, dataset, batch_size)

    def ours(*edits):
        keras.utils.set_random_seed(seed)
        model = keras_vae.VAE.from_preset("vanilla_vae_64", load_weights=False, seed=seed)
        if edits:
            model = keras_vae.VAE(
                _rebuilt(model.encoder, edits),
                _rebuilt(model.decoder, edits),
                likelihood="gaussian",
                seed=seed,
            )
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        return model

    edits = {
        "keras-vae fit": (),
        "keras-vae fit (oneDNN's kernels on 2x2 maps)": (
            _stock_form("Conv2D"),
            _stock_form("Conv2DTranspose"),
        ),
        "keras-vae fit (oneDNN's Conv2D on 2x2 maps)": (_stock_form("Conv2D"),),
        "keras-vae fit (oneDNN's Conv2DTranspose on 2x2 maps)": (_stock_form("Conv2DTranspose"),),
        "keras-vae fit (one matmul on maps up to 4x4)": (_matmul_form_up_to(4),),
        "keras-vae fit (plain BatchNorm)": (_plain_batch_norm,),
    }
    contenders = [
        KerasContender(name, ours(*changes), dataset, batch_size) for name, changes in edits.items()
    ]
    if with_torch:
        contenders.append(
            TorchContender(
                "PyTorch loop (PyTorch-VAE's VanillaVAE)",
                images,
                batch_size,
                seed,
                model="vanilla_vae_64",
            )  # fmt: skip
        )
    return contenders, dataset


def _first_epoch(source, dataset, batch_size, max_examples=None):
    """The images of the endless training stream's first epoch, as one array: what the
    references train on, fed the way their tutorials feed data."""
    steps = source.num_examples("train", max_examples) // batch_size
    return np.concatenate([batch.numpy() for batch in dataset.take(steps)])


def _plain_batch_norm(layer):
    """Makes a layer's config Keras' plain (not synchronised) BatchNorm, if it is one."""
    if layer["class_name"] == "BatchNormalization":
        layer["config"]["synchronized"] = False


def _stock_form(class_name):
    """An edit that makes a layer's config Keras' own `class_name` ("Conv2D" or
    "Conv2DTranspose") where it is that convolution's matrix-product form."""

    def edit(layer):
        if layer["class_name"] == MATMUL_FORMS[class_name]:
            layer.update(class_name=class_name, module="keras.layers", registered_name=None)

    return edit


def _matmul_form_up_to(size):
    """An edit that gives the matrix-product form to each strided (transposed)
    convolution whose coarser map is at most `size` x `size`."""

    def edit(layer):
        form = MATMUL_FORMS.get(layer["class_name"])
        stride = layer["config"].get("strides", (1,))[0]
        if form is None or stride == 1:
            return
        _, height, width, _ = layer["build_config"]["input_shape"]
        transpose = layer["class_name"] == "Conv2DTranspose"
        if coarse_map_side(height, width, stride, transpose) <= size:
            layer.update(
                class_name=form, module="keras_vae.matmul_conv", registered_name=f"keras_vae>{form}"
            )

    return edit


def _rebuilt(network, edits):
    """A copy of a functional network, each layer's config changed by `edits`."""
    config = network.get_config()
    for layer in config["layers"]:
        for edit in edits:
            edit(layer)
    return keras.Model.from_config(config)


def phase_seconds(contender_models, images, repeats=5):
    """Where a training step's time goes: median seconds per batch of the encoder's
    forward pass, the decoder's, and the whole step (forward, backward, update).

    Args:
        contender_models: dict name -> `("keras", VAE)` or `("torch", TorchTrainer)`.
        images: one batch, float32 `(n, H, W, C)` in [0, 1].
        repeats: timed calls per phase, after one untimed call.

    Returns:
        A dict name -> `{"encoder_forward", "decoder_forward", "step"}` in seconds.
    """

    def median_time(call):
        call()
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    phases = {"keras": _keras_phases, "torch": _torch_phases}
    return {
        name: {phase: median_time(call) for phase, call in phases[kind](model, images).items()}
        for name, (kind, model) in contender_models.items()
    }


def _keras_phases(model, images):
    import tensorflow as tf

    x = tf.constant(images)
    z = tf.random.normal((len(images), model.latent_dim))
    encoder = tf.function(lambda: model.encoder(x, training=True))
    decoder = tf.function(lambda: model.decoder(z, training=True))
    return {
        "encoder_forward": lambda: encoder()[0].numpy(),
        "decoder_forward": lambda: decoder().numpy(),
        "step": lambda: model.train_on_batch(images),
    }


def _torch_phases(trainer, images):
    import torch

    network = trainer.model
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    z = torch.randn(len(images), network.mean.out_features)
    return {
        "encoder_forward": lambda: network.encoder(x).sum().item(),
        "decoder_forward": lambda: network.decoder(network.decoder_input(z)).sum().item(),
        "step": trainer.step,
    }


def _spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def benchmark_training(
    contenders, dataset, rounds=7, steps=100, warmup_steps=20, flops_per_example=None, ceiling=None
):
    """Times the contenders in turns; returns one result per contender.

    Args:
        contenders: from `build_contenders`; the first is the one compared.
        dataset: keras-vae's training dataset, timed alone as well.
        rounds: timed windows per contender.
        steps: training steps per window.
        warmup_steps: steps of the untimed first round.
        flops_per_example: FLOPs of a training step per example, for GFLOP/s.
        ceiling: a `hardware.MatmulCeiling`, timed again in every round; each
            contender's GFLOP/s is then set against the ceiling of its round.

    Returns:
        A dict: `contenders`, a list of dicts (name, examples per second as
        median/min/max over windows and each window's figure, seconds of the
        warm-up round, which includes tracing, last window's mean loss,
        `keras_vae_speedup`, the median over rounds of the first contender's
        throughput divided by this one's, and with `flops_per_example` its
        `gflops` (median) and, with `ceiling`, `of_tensorflow_matmul` and
        `of_ceiling`, medians over rounds of its GFLOP/s divided by
        TensorFlow's matmul and by the faster matmul of that round);
        `input_pipeline` (examples per second of the data stream alone);
        `ceilings` (each round's matmul GFLOP/s by library), `rounds` and `steps`.
    """
    rates = {contender.name: [] for contender in contenders}
    warmup = {}
    for contender in contenders:
        started = time.perf_counter()
        contender.window(warmup_steps)
        warmup[contender.name] = time.perf_counter() - started
    batch_size = contenders[0].batch_size
    pipeline, ceilings = [], []
    for round_index in range(rounds):
        line = []
        for contender in contenders:
            examples, seconds = contender.window(steps)
            rates[contender.name].append(examples / seconds)
            line.append(f"{contender.name} {examples / seconds:,.0f}")
        pipeline.append(input_pipeline_rate(dataset, steps, batch_size))
        if ceiling is not None:
            ceilings.append(ceiling.measure())
            line.append(
                "matmul " + ", ".join(f"{k} {v:.0f}" for k, v in ceilings[-1].items()) + " GFLOP/s"
            )
        print(f"  round {round_index + 1}/{rounds}: " + ", ".join(line), flush=True)
    first = rates[contenders[0].name]
    results = []
    for contender in contenders:
        own = rates[contender.name]
        speedup = statistics.median(a / b for a, b in zip(first, own, strict=True))
        result = {
            "name": contender.name,
            "examples_per_second": _spread(own),
            "windows": own,
            "warmup_seconds": warmup[contender.name],
            "last_window_loss": contender.losses[-1],
            "keras_vae_speedup": speedup,
        }
        if flops_per_example:
            gflops = [rate * flops_per_example / 1e9 for rate in own]
            result["gflops"] = statistics.median(gflops)
            if ceilings:
                result["of_tensorflow_matmul"] = statistics.median(
                    g / c["tensorflow"] for g, c in zip(gflops, ceilings, strict=True)
                )
                result["of_ceiling"] = statistics.median(
                    g / max(c.values()) for g, c in zip(gflops, ceilings, strict=True)
                )
        results.append(result)
    return {
        "contenders": results,
        "input_pipeline_examples_per_second": _spread(pipeline),
        "ceilings": ceilings,
        "rounds": rounds,
        "steps_per_window": steps,
        "batch_size": batch_size,
    }
