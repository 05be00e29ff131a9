"""The benchmark: FLOP counts against PyTorch's counter, CPU peaks, the whole CLI."""

import json
import math
import subprocess
import sys

import keras
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the benchmark's extra: pip install -e '.[bench]'")

import keras_vae  # noqa: E402
from pipelines.benchmarks.flops import vae_flops  # noqa: E402
from pipelines.benchmarks.hardware import cpu_features, nominal_peak_gflops  # noqa: E402
from pipelines.benchmarks.keras_io_recipe import build_keras_io_vae  # noqa: E402
from pipelines.benchmarks.torch_vae import TorchVAE, loss_function  # noqa: E402


def _torch_flops_per_example(train):
    from torch.utils.flop_counter import FlopCounterMode

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
    from pipelines.benchmarks.torch_vae import TorchVanillaVAE

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


@pytest.mark.slow
def test_benchmark_cli_writes_json_and_markdown_that_agree(
    real_run, real_bundle, fashion_mnist_data_dir, serving_venv, tmp_path
):
    run_dir, _ = real_run
    bundle, _ = real_bundle
    python, _ = serving_venv
    output, markdown = tmp_path / "bench.json", tmp_path / "bench.md"
    command = [
        sys.executable, "-m", "pipelines", "benchmark",
        "--run-dir", str(run_dir), "--bundle", str(bundle),
        "--data-dir", fashion_mnist_data_dir, "--max-train-examples", "1024",
        "--rounds", "2", "--steps", "4", "--steps-per-execution", "2", "--no-xla",
        "--output", str(output), "--markdown", str(markdown),
        "--serve-command", str(python.parent / "keras-vae-serve"), "--serve-seconds", "1",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(output.read_text())
    page = markdown.read_text()

    training = results["training"]
    names = [row["name"] for row in training["contenders"]]
    assert names == [
        "keras-vae fit (steps_per_execution=2)",
        "keras-vae fit (steps_per_execution=1)",
        "keras.io recipe",
        "PyTorch loop",
    ]
    first = training["contenders"][0]["windows"]
    first_median = training["contenders"][0]["examples_per_second"]["median"]
    for row in training["contenders"]:
        assert len(row["windows"]) == 2 and min(row["windows"]) > 0
        ratios = sorted(a / b for a, b in zip(first, row["windows"], strict=True))
        assert row["keras_vae_speedup"] == pytest.approx(np.median(ratios))
        # All three optimise the negative ELBO in nats per example: an untrained
        # network starts near 784 ln 2 = 543 nats, and a few steps lower it.
        assert 250 < row["last_window_loss"] < 784 * math.log(2) + 5
        median = row["examples_per_second"]["median"]
        assert f"| {row['name']} | {median:,.0f} (" in page
    # Training FLOPs are the default network's; inference FLOPs the run's decoder.
    assert results["training_flops"] == vae_flops(keras_vae.VAE.from_preset("fashion_mnist_conv"))
    assert results["inference_flops"] == vae_flops(keras.models.load_model(run_dir / "model.keras"))
    training_gflops = first_median * results["training_flops"]["training_step"] / 1e9
    assert f"| {training_gflops:.1f} |" in page

    rows = {(row["runtime"], row["batch"]): row for row in results["decoder_inference"]}
    browser = results["browser"]
    web = f"onnxruntime-web, Chromium ({browser['backend']}, {browser['threads']} threads)"
    runtimes = {runtime for runtime, _ in rows}
    assert runtimes == {
        "keras call", "keras predict", "savedmodel",
        "onnxruntime float32", "onnxruntime float16", "onnxruntime-node", web,
    }  # fmt: skip
    assert {batch for _, batch in rows} == {1, 64, 1024}
    # The browser decodes batches of 1 and 64 like Keras, and its load time is reported.
    for runtime in (web, "onnxruntime-node"):
        assert [batch for name, batch in rows if name == runtime] == [1, 64]
        for batch in (1, 64):
            assert rows[(runtime, batch)]["max_abs_error_vs_keras"] < 1e-4
    assert browser["load_ms"] > 0 and f"{browser['load_ms']:.0f} ms" in page
    # Other code paths to the same float32 decoder agree with Keras' call closely.
    for runtime in ("keras predict", "savedmodel", "onnxruntime float32"):
        assert rows[(runtime, 1024)]["max_abs_error_vs_keras"] < 1e-4, runtime
    assert rows[("onnxruntime float16", 1024)]["max_abs_error_vs_keras"] < 1e-2
    for (runtime, batch), row in rows.items():
        assert f"| {runtime} | {batch} | {row['median_ms']:.3f} (" in page

    study = results["large_batch"]
    assert study["batch"] == 1024
    assert sum(study["op_share"].values()) == pytest.approx(1.0)
    assert "ConvTranspose" in study["op_share"]
    settings = {row["setting"]: row for row in study["settings"]}
    assert settings["savedmodel"]["vs_savedmodel"] == 1.0
    assert {"onnxruntime, graph optimisation disabled", "onnxruntime, in chunks of 16"} < set(
        settings
    )
    for row in study["settings"]:
        assert row["max_abs_error_vs_savedmodel"] < 1e-5, row
        assert f"| {row['setting']} | {row['median_ms']:.1f} |" in page

    serving = results["serving"]
    servers = ("server, JSON", "server, binary tensors", "server, JSON, no batching")
    assert [(row["runtime"], row["clients"]) for row in serving] == [
        ("onnxruntime in process", 1),
        *((server, clients) for server in servers for clients in (1, 8, 64)),
    ]
    for row in serving:
        assert row["requests"] > 0 and row["p50_ms"] <= row["p99_ms"]
        assert row["max_abs_error_vs_in_process"] < 1e-6
        assert (
            f"| {row['runtime']} | {row['clients']} | {row['requests_per_second']:,.0f} |" in page
        )
    hardware = results["hardware"]
    assert set(hardware["matmul_gflops_by_library"]) == {"tensorflow", "numpy"}
    assert hardware["matmul_gflops"] == max(hardware["matmul_gflops_by_library"].values())


@pytest.mark.parametrize("flag", ["--threads", "--rounds", "--steps", "--batch-size"])
def test_counts_must_be_positive(flag, capsys):
    from pipelines.cli import build_parser

    parser, _ = build_parser()
    for value in ("0", "-3", "two"):
        with pytest.raises(SystemExit):
            parser.parse_args(["benchmark", flag, value])
        assert "expected a positive integer" in capsys.readouterr().err
    assert getattr(parser.parse_args(["benchmark", flag, "3"]), flag[2:].replace("-", "_")) == 3
