"""The benchmarks: FLOP counts against PyTorch's counter, CPU peaks and the measured
clock, ratios against the ceiling of each round, and one short run of them all."""

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

import keras_vae
from benchmarks.flops import vae_flops
from benchmarks.hardware import (
    MatmulCeiling,
    cpu_features,
    measured_clock_ghz,
    nominal_peak_gflops,
)
from benchmarks.keras_io_recipe import build_keras_io_vae
from benchmarks.serving import STALLED

# PyTorch loads in the tests that use it, not when each worker collects this file.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None,
    reason="the benchmark's extra: pip install -e '.[bench]'",
)

ROOT = Path(__file__).resolve().parent.parent
# The real Triton server's environment, which `make test` builds (make triton-deps).
TRITON_PYTHON = ROOT / ".venv-triton" / "bin" / "python"


def _torch_flops_per_example(train):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from benchmarks.torch_vae import TorchVAE, loss_function

    model = TorchVAE()
    x = (torch.rand(4, 1, 28, 28) < 0.5).float()
    with FlopCounterMode(display=False) as counter:
        logits, mean, log_var = model(x)
        if train:
            loss_function(logits, x, mean, log_var).backward()
    return counter.get_total_flops() / len(x)


def test_flop_counts_match_pytorchs_counter_on_the_same_network():
    ours = keras_vae.VAE.from_preset("fashion_mnist_conv")
    recipe = build_keras_io_vae()
    expected_forward = _torch_flops_per_example(train=False)
    expected_training = _torch_flops_per_example(train=True)
    for model in (ours, recipe):
        flops = vae_flops(model)
        assert flops["forward"] == expected_forward
        assert flops["training_step"] == expected_training
        assert flops["encoder_forward"] + flops["decoder_forward"] == flops["forward"]


def test_the_references_have_the_default_models_parameters():
    from benchmarks.torch_vae import TorchVAE

    def trainable(model):
        return sum(math.prod(v.shape) for v in model.trainable_variables)

    ours = keras_vae.VAE.from_preset("fashion_mnist_conv")
    recipe = build_keras_io_vae()
    torch_count = sum(p.numel() for p in TorchVAE().parameters())
    assert trainable(ours) == trainable(recipe) == torch_count
    keras_shapes = sorted(tuple(v.shape) for v in ours.trainable_variables)
    # PyTorch keeps (out, in, h, w) kernels and (out, in) matrices; compare sizes.
    torch_sizes = sorted(p.numel() for p in TorchVAE().parameters())
    assert sorted(math.prod(shape) for shape in keras_shapes) == torch_sizes


def test_the_pytorch_vanilla_vae_is_the_presets_network():
    import torch

    from benchmarks.torch_vae import TorchVanillaVAE

    ours = keras_vae.VAE.from_preset("vanilla_vae_64", load_weights=False)
    theirs = TorchVanillaVAE()
    # PyTorch-VAE's convolutions keep their biases before BatchNorm (5 encoder and
    # 5 decoder blocks); keras-vae drops them and learns the Gaussian's scale.
    biases = sum((32, 64, 128, 256, 512)) + sum((256, 128, 64, 32, 32))
    ours_count = sum(math.prod(v.shape) for v in ours.trainable_variables)
    assert sum(p.numel() for p in theirs.parameters()) == ours_count + biases - 1
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    outputs, mean, log_var = theirs(images)
    assert outputs.shape == images.shape and mean.shape == log_var.shape == (2, 128)


def test_the_vanilla_vae_contenders_differ_only_in_their_convolutions_forms():
    from benchmarks.training import _matmul_form_up_to, _rebuilt, _stock_form

    vae = keras_vae.VAE.from_preset("vanilla_vae_64", load_weights=False)

    def forms(edits):
        return [
            (type(layer).__name__, layer.input.shape[1], layer.output.shape[1])
            for network in (vae.encoder, vae.decoder)
            for layer in _rebuilt(network, edits).layers
            if "Conv" in type(layer).__name__
        ]

    used = forms([])
    stock = forms([_stock_form("Conv2D"), _stock_form("Conv2DTranspose")])
    up_to_4 = forms([_matmul_form_up_to(4)])
    # Same layers and maps; only the class changes, where the edit says.
    assert [form[1:] for form in stock] == [form[1:] for form in up_to_4] == [f[1:] for f in used]
    assert [name for name, *_ in used if name.startswith("Matmul")] == [
        "MatmulConv2D", "MatmulConv2DTranspose",
    ]  # fmt: skip
    assert not [name for name, *_ in stock if name.startswith("Matmul")]
    assert [(name, inside, outside) for name, inside, outside in up_to_4 if "Matmul" in name] == [
        ("MatmulConv2D", 8, 4), ("MatmulConv2D", 4, 2),
        ("MatmulConv2DTranspose", 2, 4), ("MatmulConv2DTranspose", 4, 8),
    ]  # fmt: skip
    only_transposed = forms([_stock_form("Conv2DTranspose")])
    assert [name for name, *_ in only_transposed if "Matmul" in name] == ["MatmulConv2D"]


def test_nominal_peak_of_a_published_cpu():
    # Intel Xeon E5-2680 v3: 12 Haswell cores at 2.5 GHz, AVX2 with two FMA
    # units, 480 GFLOP/s in float64 by Intel's figure, so 960 in float32.
    cpuinfo = (
        "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz\n"
        "cpu MHz\t\t: 2500.000\nflags\t\t: fpu sse sse2 avx fma avx2\n"
    )
    features = cpu_features(cpuinfo, cores=12)
    assert features["vector_bits"] == 256 and features["fma"]
    assert nominal_peak_gflops(features) == pytest.approx(960.0)
    assert nominal_peak_gflops({**features, "mhz": None}) is None
    # At the 3.3 GHz all-core turbo the clock is measured at instead.
    assert nominal_peak_gflops({**features, "mhz": None}, ghz=3.3) == pytest.approx(1267.2)
    assert not features["bf16"]
    assert cpu_features(cpuinfo.replace("avx2", "avx2 avx512f avx512_bf16"))["bf16"]


# Another process on the cores slows the clock's chains and so lowers the peak
# under the products: it runs alone (make test runs the exclusive tests last).
@pytest.mark.exclusive
def test_the_peak_at_the_measured_clock_bounds_every_matrix_product():
    # No kernel can beat every core retiring full-width FMAs on both units at the
    # clock they run at: a clock measured too low (two additions a cycle, say)
    # would put the peak under the matrix products, as the base clock of
    # /proc/cpuinfo did on a turbo-boosting host.
    features = cpu_features()
    ghz = measured_clock_ghz(features["cores"], rounds=3)
    if ghz is None:
        pytest.skip("the clock is measured with x86-64 machine code")
    assert 0.5 * features["mhz"] / 1e3 < ghz < 7.0
    matmul = MatmulCeiling(size=1024, repeats=3).measure()
    assert set(matmul) == {"tensorflow", "numpy"}
    assert max(matmul.values()) <= nominal_peak_gflops(features, ghz)


class _ScriptedContender:
    def __init__(self, name, seconds):
        self.name, self.seconds, self.batch_size, self.losses = name, list(seconds), 10, []

    def window(self, steps):
        self.losses.append(1.0)
        return steps * self.batch_size, self.seconds.pop(0)


class _ScriptedCeiling:
    def __init__(self, rounds):
        self.rounds = list(rounds)

    def measure(self):
        return self.rounds.pop(0)


def test_training_rates_are_set_against_the_ceiling_of_their_own_round():
    import tensorflow as tf

    from benchmarks.training import benchmark_training

    # 100 steps of 10 examples per window; warm-up windows first (0.1 s each).
    ours = _ScriptedContender("ours", [0.1, 1.0, 2.0, 1.0])
    theirs = _ScriptedContender("theirs", [0.1, 2.0, 2.0, 4.0])
    ceilings = [
        {"tensorflow": 100.0, "numpy": 50.0},
        {"tensorflow": 40.0, "numpy": 80.0},
        {"tensorflow": 200.0, "numpy": 100.0},
    ]
    dataset = tf.data.Dataset.range(10).repeat()
    result = benchmark_training(
        [ours, theirs], dataset, rounds=3, steps=100, warmup_steps=1,
        flops_per_example=1e8, ceiling=_ScriptedCeiling(ceilings),
    )  # fmt: skip
    assert result["ceilings"] == ceilings
    by_name = {row["name"]: row for row in result["contenders"]}
    # 1,000 examples x 0.1 GFLOP in 1, 2, 1 s: 100, 50, 100 GFLOP/s; against
    # TensorFlow's 100, 40, 200: 1.0, 1.25, 0.5; against the faster of each
    # round (100, 80, 200): 1.0, 0.625, 0.5. Theirs: 50, 50, 25 GFLOP/s.
    assert by_name["ours"]["gflops"] == pytest.approx(100.0)
    assert by_name["ours"]["of_tensorflow_matmul"] == pytest.approx(1.0)
    assert by_name["ours"]["of_ceiling"] == pytest.approx(0.625)
    assert by_name["theirs"]["gflops"] == pytest.approx(50.0)
    assert by_name["theirs"]["of_tensorflow_matmul"] == pytest.approx(0.5)
    assert by_name["theirs"]["of_ceiling"] == pytest.approx(0.5)
    assert by_name["theirs"]["keras_vae_speedup"] == pytest.approx(2.0)


@pytest.fixture(scope="module")
def record(real_run, real_bundle, fashion_mnist_data_dir, serving_venv, tmp_path_factory):
    """One short `python -m benchmarks` run of every part: (results, Markdown page, run folder)."""
    run_dir, _ = real_run
    bundle, _ = real_bundle
    folder = tmp_path_factory.mktemp("benchmark")
    output, markdown = folder / "bench.json", folder / "bench.md"
    command = [
        sys.executable, "-m", "benchmarks",
        "--run-dir", str(run_dir), "--bundle", str(bundle),
        "--data-dir", fashion_mnist_data_dir, "--max-train-examples", "1024",
        "--rounds", "2", "--steps", "4", "--steps-per-execution", "2", "--no-xla",
        "--output", str(output), "--markdown", str(markdown),
        "--serve-command", str(serving_venv.parent / "keras-vae-serve"), "--serve-seconds", "1",
        "--serve-rounds", "2", "--triton-python", str(TRITON_PYTHON),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(output.read_text()), markdown.read_text(), run_dir


def test_training_rows_train_the_same_objective_and_reach_the_page(record):
    results, page, _ = record
    training = results["training"]
    names = [row["name"] for row in training["contenders"]]
    assert names == [
        "keras-vae fit (steps_per_execution=2)",
        "keras-vae fit (steps_per_execution=1)",
        "keras.io recipe",
        "PyTorch loop",
    ]
    for row in training["contenders"]:
        assert len(row["windows"]) == 2 and min(row["windows"]) > 0
        # All of them optimise the negative ELBO in nats per example: an untrained
        # network starts near 784 ln 2 = 543 nats, and a few steps lower it.
        assert 250 < row["last_window_loss"] < 784 * math.log(2) + 5
        median = row["examples_per_second"]["median"]
        assert f"| {row['name']} | {median:,.0f} (" in page
        assert row["of_ceiling"] <= row["of_tensorflow_matmul"]
    # Each round timed the matmuls again, once per library.
    assert [set(ceiling) for ceiling in training["ceilings"]] == [{"tensorflow", "numpy"}] * 2


def test_flops_are_the_default_networks_and_the_runs_decoders(record):
    results, page, run_dir = record
    assert results["training_flops"] == vae_flops(keras_vae.VAE.from_preset("fashion_mnist_conv"))
    assert results["inference_flops"] == vae_flops(keras.models.load_model(run_dir / "model.keras"))
    first_median = results["training"]["contenders"][0]["examples_per_second"]["median"]
    training_gflops = first_median * results["training_flops"]["training_step"] / 1e9
    assert f"| {training_gflops:.1f} |" in page


def test_the_profile_finds_the_transposed_convolutions_weight_gradient(record):
    results, page, _ = record
    profile = {row["name"]: row for row in results["training_profile"]["categories"]}
    name = "transposed convolutions, weight gradient"
    assert profile[name]["gflops"] > 0
    assert f"| {name} | {profile[name]['ms_per_step']:.2f} |" in page


def test_every_inference_runtime_decodes_as_keras_does(record):
    results, page, _ = record
    rows = {(row["runtime"], row["batch"]): row for row in results["decoder_inference"]}
    browser = results["browser"]
    web = f"onnxruntime-web, Chromium ({browser['backend']}, {browser['threads']} threads)"
    assert {runtime for runtime, _ in rows} == {
        "keras call", "keras predict", "savedmodel",
        "onnxruntime float32", "onnxruntime float16", "onnxruntime-node", web,
    }  # fmt: skip
    assert {batch for _, batch in rows} == {1, 64, 1024}
    # The browser and Node decode batches of 1 and 64 like Keras; the page's load time is shown.
    for runtime in (web, "onnxruntime-node"):
        assert [batch for name, batch in rows if name == runtime] == [1, 64]
        for batch in (1, 64):
            assert rows[(runtime, batch)]["max_abs_error_vs_keras"] < 1e-4
    assert browser["load_ms"] > 0 and f"{browser['load_ms']:.0f} ms" in page
    for runtime in ("keras predict", "savedmodel", "onnxruntime float32"):
        assert rows[(runtime, 1024)]["max_abs_error_vs_keras"] < 1e-4, runtime
    assert rows[("onnxruntime float16", 1024)]["max_abs_error_vs_keras"] < 1e-2
    for (runtime, batch), row in rows.items():
        assert f"| {runtime} | {batch} | {row['median_ms']:.3f} (" in page


def test_the_large_batch_settings_agree_with_the_savedmodel(record):
    results, page, _ = record
    study = results["large_batch"]
    assert study["batch"] == 1024
    assert sum(study["op_share"].values()) == pytest.approx(1.0)
    assert "ConvTranspose" in study["op_share"]
    settings = {row["setting"] for row in study["settings"]}
    assert {"onnxruntime, graph optimisation disabled", "onnxruntime, in chunks of 16"} < settings
    for row in study["settings"]:
        assert row["max_abs_error_vs_savedmodel"] < 1e-5, row
        assert f"| {row['setting']} | {row['median_ms']:.1f} |" in page


def test_every_server_point_answers_as_onnxruntime_in_process(record):
    results, page, _ = record
    serving = results["serving"]
    servers = (
        "keras-vae-serve, binary tensors", "keras-vae-serve, no batching, binary tensors",
        "Triton, binary tensors", "keras-vae-serve, JSON", "Triton, JSON",
    )  # fmt: skip
    stalled = f"binary tensors, {STALLED} stalled connections"
    assert [(row["runtime"], row["clients"]) for row in serving] == [
        ("onnxruntime in process", 1),
        *((server, clients) for clients in (1, 8, 64) for server in servers),
        (f"keras-vae-serve, {stalled}", 8),
        (f"Triton, {stalled}", 8),
    ]
    for row in serving:
        assert row["requests"] > 0 and row["p50_ms"] <= row["p99_ms"]
        assert row["max_abs_error_vs_in_process"] < 1e-6
        assert (
            f"| {row['runtime']} | {row['clients']} | {row['requests_per_second']:,.0f} |" in page
        )
        # keras-vae-serve's batching rows are set against Triton's.
        compared = (
            row["runtime"].startswith("keras-vae-serve, ") and "no batching" not in row["runtime"]
        )
        assert ("vs_triton" in row) == compared


def test_the_header_gives_the_machine_and_its_measured_ceilings(record):
    results, page, _ = record
    hardware = results["hardware"]
    assert set(hardware["matmul_gflops_by_library"]) == {"tensorflow", "numpy"}
    assert hardware["matmul_gflops"] == max(hardware["matmul_gflops_by_library"].values())
    # The header's matmuls: the timing at the start and each round's.
    assert hardware["matmul_measurements"] == 3
    assert f"{hardware['measured_ghz']:.2f} GHz (measured with all cores busy" in page
    assert results["command"].startswith("python -m benchmarks --run-dir")


@pytest.mark.parametrize("flag", ["--threads", "--rounds", "--steps", "--batch-size"])
def test_counts_must_be_positive(flag, capsys):
    from benchmarks.__main__ import build_parser

    parser = build_parser()
    for value in ("0", "-3", "two"):
        with pytest.raises(SystemExit):
            parser.parse_args([flag, value])
        assert "expected a positive integer" in capsys.readouterr().err
    assert getattr(parser.parse_args([flag, "3"]), flag[2:].replace("-", "_")) == 3


def test_keras_vae_benchmark_runs_the_checkouts_benchmarks():
    done = subprocess.run(
        [sys.executable, "-m", "pipelines", "benchmark", "--help"],
        capture_output=True, text=True, timeout=120, cwd="/",
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.startswith("usage: python -m benchmarks") and "--serve-seconds" in done.stdout
    )
