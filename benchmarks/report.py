"""The benchmark's figures as a Markdown page."""

import statistics

_LIBRARIES = {"tensorflow": "TensorFlow's `tf.linalg.matmul`", "numpy": "NumPy's OpenBLAS"}


def _percent(part, whole):
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def _training_table(training, flops, ceilings):
    per_round = bool(training.get("ceilings"))
    against = (
        "TensorFlow's matmul and the faster matmul (the ceiling) timed in the same round, "
        "median over rounds"
        if per_round
        else "the matmuls timed at the start"
    )
    lines = [
        f"Batch {training['batch_size']}, {training['rounds']} timed windows of "
        f"{training['steps_per_window']} steps per contender, taken in turns; examples/s "
        "as median (min–max) over the windows. Speed-up: the median over rounds of "
        "keras-vae's first row divided by that row. GFLOP/s from "
        f"{flops['training_step'] / 1e6:.1f} MFLOP per example and step (forward "
        f"{flops['forward'] / 1e6:.1f}, backward the rest), set against {against}, "
        "and against the nominal peak.",
        "",
        "| contender | examples/s | keras-vae speed-up | GFLOP/s | of TF matmul | of ceiling "
        "| of peak | first window (s) | loss |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += _training_rows(training["contenders"], flops, ceilings, per_round)
    return lines + _training_notes(training, per_round)


def _training_rows(contenders, flops, ceilings, per_round):
    peak, matmul = ceilings
    lines = []
    for row in contenders:
        rate = row["examples_per_second"]
        gflops = rate["median"] * flops["training_step"] / 1e9
        if per_round:
            of_tf = f"{100 * row['of_tensorflow_matmul']:.1f}%"
            of_ceiling = f"{100 * row['of_ceiling']:.1f}%"
        else:
            of_tf, of_ceiling = "n/a", _percent(gflops, matmul)
        lines.append(
            f"| {row['name']} | {rate['median']:,.0f} ({rate['min']:,.0f}–{rate['max']:,.0f}) "
            f"| {row['keras_vae_speedup']:.2f}× | {gflops:.1f} | {of_tf} | {of_ceiling} "
            f"| {_percent(gflops, peak)} | {row['warmup_seconds']:.1f} "
            f"| {row['last_window_loss']:.1f} |"
        )
    return lines


def _training_notes(training, per_round):
    """What the input pipeline delivers, what the columns mean, the matmuls' spread."""
    pipeline = training["input_pipeline_examples_per_second"]
    lines = [
        "",
        f"The input pipeline alone (keras-vae's `tf.data` stream, preprocessed as in training) "
        f"delivers {pipeline['median']:,.0f} ({pipeline['min']:,.0f}–{pipeline['max']:,.0f}) "
        "examples/s. The first window includes tracing and, for the references, "
        "building their input from the array; loss: mean negative ELBO in nats per "
        "example over the last window.",
    ]
    if per_round:
        by_library = {
            name: [round_[name] for round_ in training["ceilings"]]
            for name in training["ceilings"][0]
        }
        lines.append(
            "The matmuls over the rounds, GFLOP/s median (min–max): "
            + "; ".join(
                f"{_LIBRARIES[name]} {statistics.median(values):.1f} "
                f"({min(values):.1f}–{max(values):.1f})"
                for name, values in by_library.items()
            )
            + "."
        )
    return lines


def _inference_table(rows, flops, ceilings):
    peak, matmul = ceilings
    lines = [
        f"Decoder forward pass: {flops['decoder_forward'] / 1e6:.1f} MFLOP per example. "
        "Median (10th–90th percentile) of repeated calls after warm-up; error: largest "
        "absolute difference from the Keras model's output, pixel means in [0, 1].",
        "",
        "| runtime | batch | ms per call | examples/s | GFLOP/s | of peak | of matmul "
        "| max error vs Keras |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        gflops = row["examples_per_second"] * flops["decoder_forward"] / 1e9
        lines.append(
            f"| {row['runtime']} | {row['batch']} | {row['median_ms']:.3f} "
            f"({row['p10_ms']:.3f}–{row['p90_ms']:.3f}) | {row['examples_per_second']:,.0f} "
            f"| {gflops:.1f} | {_percent(gflops, peak)} | {_percent(gflops, matmul)} "
            f"| {row['max_abs_error_vs_keras']:.1e} |"
        )
    return lines


def markdown_report(results):
    """Renders the results of `python -m benchmarks` as Markdown.

    Args:
        results: the dict the benchmark saves as JSON.

    Returns:
        The page, a string.
    """
    hardware = results["hardware"]
    ceilings = (hardware["nominal_peak_gflops"], hardware["matmul_gflops"])
    lines = _header(results)
    if "training" in results:
        lines += _section(
            "## Training throughput",
            _training_table(results["training"], results["training_flops"], ceilings),
        )
    if "settings" in results:
        lines += _section("### Settings fixed per process", _settings_table(results["settings"]))
    if "training_profile" in results:
        lines += _section(
            "### Where keras-vae's training step goes",
            _profile_table(results["training_profile"]),
        )
    if "vanilla_vae_training" in results:
        lines += _vanilla_vae_section(results, ceilings)
    if "decoder_inference" in results:
        lines += _inference_section(results, ceilings)
    if "large_batch" in results:
        study = results["large_batch"]
        lines += _section(
            f"## onnxruntime against the SavedModel at batch {study['batch']}",
            _large_batch_table(study),
        )
    if "serving" in results:
        lines += _section("## Serving", _serving_table(results["serving"]))
    return "\n".join(lines)


def _section(title, body):
    """A titled part of the page: the title, a blank line, the body, a blank line."""
    return [title, "", *body, ""]


def _header(results):
    """The page's title, command, machine, ceilings and versions."""
    hardware = results["hardware"]
    versions = ", ".join(f"{name} {version}" for name, version in results["versions"].items())
    peak = hardware["nominal_peak_gflops"]
    return [
        "# Benchmarks",
        "",
        f"Measured {results['date']} with `{results['command']}`.",
        "",
        f"- Machine: {hardware['model']}, {hardware['cores']} cores at {_clock(hardware)}, "
        f"{hardware['vector_bits']}-bit vectors{' with FMA' if hardware['fma'] else ''}"
        f"{', native bfloat16' if hardware.get('bf16') else ''}; {results['threads']} "
        f"threads for TensorFlow, PyTorch and onnxruntime. {results['accelerators']}",
        f"- Nominal float32 peak: {peak:.1f} GFLOP/s (cores × clock × float32 lanes × 2 "
        "for FMA × 2 FMA units per core, assumed). Practical ceiling: the faster float32 "
        f"2048×2048 matrix product, {_ceiling(hardware)}"
        + (
            f" (medians of {hardware['matmul_measurements']} timings: at the start and in "
            "every training round)."
            if hardware.get("matmul_measurements", 1) > 1
            else "."
        ),
        f"- Versions: {versions}.",
        "",
    ]


def _vanilla_vae_section(results, ceilings):
    """The VanillaVAE's throughput beside PyTorch, its phase times and its profile."""
    lines = ["## The VanillaVAE (64×64×3) beside its PyTorch form", ""]
    lines += _training_table(
        results["vanilla_vae_training"], results["vanilla_vae_training_flops"], ceilings
    )
    lines += [
        "",
        "Here the loss is each contender's own: keras-vae's negative ELBO in nats under "
        "its Gaussian likelihood (learned scale), PyTorch-VAE's MSE plus the KL on images "
        "in [-1, 1]. Where a step's time goes (ms per batch, median of 5 calls):",
        "",
    ]
    lines += _phase_table(results["vanilla_vae_phases"])
    lines.append("")
    if "vanilla_vae_profile" in results:
        lines += _section(
            "### Where the VanillaVAE's training step goes",
            _profile_table(results["vanilla_vae_profile"]),
        )
    return lines


def _inference_section(results, ceilings):
    """The decoder in every runtime, with how the browser rows were run."""
    lines = ["## Decoder inference", ""]
    lines += _inference_table(results["decoder_inference"], results["inference_flops"], ceilings)
    if "browser" in results:
        browser = results["browser"]
        lines += [
            "",
            f"The onnxruntime-web rows run in the explorer page (examples/web) in headless "
            f"Chromium, {browser['backend']} with {browser['threads']} threads; the page "
            f"loaded the runtime and checked and loaded both networks in "
            f"{browser['load_ms']:.0f} ms.",
        ]
    lines.append("")
    return lines


def _settings_table(settings):
    lines = [
        f"keras-vae's training of the default model (batch {settings['batch_size']}, "
        f"steps_per_execution={settings['steps_per_execution']}, {settings['threads']} "
        f"threads), each setting in its own process, in turns over {settings['rounds']} "
        f"rounds; a process's figure is its fastest of {settings['windows']} windows of "
        f"{settings['steps']} steps after a warm-up one. Against training: the median over "
        "rounds of the setting's figure over that of the process as training runs it.",
        "",
        "| setting | examples/s, median (min–max) | against training |",
        "|---|---|---|",
    ]
    for row in settings["rows"]:
        rate = row["examples_per_second"]
        lines.append(
            f"| {row['name']} | {rate['median']:,.0f} ({rate['min']:,.0f}–{rate['max']:,.0f}) "
            f"| {row['vs_as_trained']:.2f}× |"
        )
    return lines


def _profile_table(profile):
    lines = [
        f"TensorFlow's profiler over {profile['steps']} steps of batch {profile['batch_size']}: "
        f"{profile['profiled_ms_per_step']:.1f} ms per step while profiled, "
        f"{profile['unprofiled_ms_per_step']:.1f} ms without. Ops are the kernels TensorFlow "
        "ran, grouped by role; two run at once at times (on average "
        f"{profile['concurrency']:.2f} while any runs), sharing the cores, so their times add "
        f"up to {profile['op_ms_per_step']:.1f} ms per step. GFLOP/s: the layers' FLOPs over "
        "their kernels' time.",
        "",
        "| where | ms per step | share | GFLOP/s | slowest op |",
        "|---|---|---|---|---|",
    ]
    for row in profile["categories"]:
        if not row["ms_per_step"]:
            continue
        rate = f"{row['gflops']:.1f}" if row["gflops"] else ""
        slowest = row["ops"][0]["name"].split("StatefulPartitionedCall/")[-1]
        slowest = f"`{slowest}`" if slowest != row["name"] else ""
        lines.append(
            f"| {row['name']} | {row['ms_per_step']:.2f} | {100 * row['share']:.1f}% | {rate} "
            f"| {slowest} |"
        )
    return lines


def _phase_table(phases):
    lines = [
        "| contender | encoder forward | decoder forward | whole step | backward + update |",
        "|---|---|---|---|---|",
    ]
    for name, seconds in phases.items():
        forward = seconds["encoder_forward"] + seconds["decoder_forward"]
        lines.append(
            f"| {name} | {seconds['encoder_forward'] * 1e3:.0f} "
            f"| {seconds['decoder_forward'] * 1e3:.0f} | {seconds['step'] * 1e3:.0f} "
            f"| {(seconds['step'] - forward) * 1e3:.0f} |"
        )
    return lines


def _large_batch_table(study):
    shares = ", ".join(
        f"{op} {share:.0%}" for op, share in study["op_share"].items() if share >= 0.01
    )
    lines = [
        f"Settings timed in turns; speed: the median over rounds of the setting's time "
        f"divided by the SavedModel's in the same round. onnxruntime's kernel time by "
        f"operator: {shares}.",
        "",
        "| setting | ms | time vs SavedModel | max error vs SavedModel |",
        "|---|---|---|---|",
    ]
    for row in study["settings"]:
        lines.append(
            f"| {row['setting']} | {row['median_ms']:.1f} | {row['vs_savedmodel']:.3f} "
            f"| {row['max_abs_error_vs_savedmodel']:.1e} |"
        )
    return lines


def _serving_table(rows):
    lines = [
        "Batch-1 decode requests on loopback: each client sends Open Inference Protocol requests "
        "(binary tensors, as Triton's client sends them, or JSON) one after the other over one "
        "connection. One client program loads keras-vae-serve and the real Triton server "
        "(core 2.51 from the nvidia-pytriton wheel, the bundle's python-backend configuration "
        "running the same model.onnx in onnxruntime, dynamic batching) in turns, each at its "
        "defaults (keras-vae-serve: a worker process per core, one onnxruntime thread each; "
        "Triton: the exported configuration, one instance, onnxruntime's default "
        "threads); clients and servers share the cores. Requests/s: the median over the rounds, "
        "with the rounds' range; latency: measured at the client, percentiles over every "
        "request of all rounds; error: largest absolute "
        "difference from in-process onnxruntime; vs Triton: throughput over Triton's with the "
        "same protocol and clients. The last rows hold stalled connections open beside the "
        "clients: a third send nothing, a third half their headers, a third half a body.",
        "",
        "| runtime | clients | requests/s | range | vs Triton | p50 ms | p99 ms | requests "
        "| max error |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        low, high = row.get("requests_per_second_range", [row["requests_per_second"]] * 2)
        ratio = f"{row['vs_triton']:.2f}x" if "vs_triton" in row else ""
        lines.append(
            f"| {row['runtime']} | {row['clients']} | {row['requests_per_second']:,.0f} "
            f"| {low:,.0f}–{high:,.0f} | {ratio} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} "
            f"| {row['requests']:,} | {row['max_abs_error_vs_in_process']:.1e} |"
        )
    return lines


def _clock(hardware):
    """The clock the peak is computed from: measured where it could be."""
    if hardware.get("measured_ghz"):
        return (
            f"{hardware['measured_ghz']:.2f} GHz (measured with all cores busy; "
            f"the kernel reports {hardware['mhz']} MHz)"
        )
    return f"{hardware['mhz']} MHz (as the kernel reports it; not measured)"


def _ceiling(hardware):
    """Which matrix product set the ceiling, and what the other one reached."""
    figures = hardware.get("matmul_gflops_by_library") or {"numpy": hardware["matmul_gflops"]}
    coretype = hardware.get("openblas_coretype")
    described = [
        f"{_LIBRARIES[name]} {value:.1f} GFLOP/s"
        + (f" (OPENBLAS_CORETYPE={coretype})" if name == "numpy" and coretype else "")
        for name, value in sorted(figures.items(), key=lambda item: -item[1])
    ]
    return described[0] + (f"; {', '.join(described[1:])}" if described[1:] else "")
