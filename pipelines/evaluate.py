"""Evaluates a training run on its test set and writes a report with pictures.

    keras-vae evaluate --run-dir runs/default --autoencoder-run runs/default-autoencoder
    keras-vae evaluate --run-dir runs/one-hour-fashion_mnist-seed0 --protocol published

Writes `report.md` and `report.json` in the run folder, with the pictures in
`report/` and each image's estimate in `log_likelihoods.npy`: test negative
ELBO and its parts, the importance-weighted (IWAE) estimate of the negative
log-likelihood with k samples and its standard error,
the protocol that produced it (`keras_vae.likelihood_protocols`), bits per dimension,
active latent units, samples, reconstructions, the latent space by class, the
2-D manifold (latent_dim 2), loss curves, and a latent interpolation GIF (beside
the autoencoder's when its run is given).
"""

import contextlib
import io
import json
import math
import time
from pathlib import Path

import numpy as np

from keras_vae.charts import plot_latent_space, plot_loss_curves
from keras_vae.evaluation import (
    active_units,
    bits_per_dim,
    evaluate_losses,
    importance_weighted_log_likelihood,
    likelihood_figures,
)
from keras_vae.files import write_bytes_atomically
from keras_vae.likelihood_protocols import PROTOCOLS, PUBLISHED_K
from keras_vae.pictures import latent_manifold, write_gif, write_png
from keras_vae.run import EVALUATION_BATCH_SIZE, UNITS, load_run


def evaluate_run(
    run_dir, autoencoder_run=None, k=1000, iwae_examples=2000, seed=0, interpolate=None
):
    """Computes the figures and pictures of a run; writes `report.md` and `report.json`.

    The negative ELBO is computed as the training summary computes it, on the
    same fixed test set with the same noise, so the two agree.

    Args:
        run_dir: a training run folder of a VAE.
        autoencoder_run: a run folder of an autoencoder with the same data, or `None`.
        k: importance samples per image for the IWAE estimate.
        iwae_examples: test images the IWAE estimate uses (the first ones), or
            `None` for all of them.
        seed: seed of the IWAE samples and of the pictures' latent vectors.
        interpolate: `None`, or two class names: the interpolation goes from
            the first test image of one to the first of the other (default:
            the first test image and the first of another class).

    Returns:
        The report, as a dict.
    """
    for name, value in (("k", k), ("iwae_examples", iwae_examples)):
        if name == "iwae_examples" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"Expected {name} to be a positive integer. Received: {value!r}")
    run = load_run(run_dir)
    if run.config.model == "autoencoder":
        raise ValueError(
            f"Expected the run folder of a VAE. Received: {run_dir}, a {run.config.model} "
            "run; pass it as --autoencoder-run beside a VAE's run instead."
        )
    autoencoder = load_run(autoencoder_run) if autoencoder_run is not None else None
    model, images = run.model, run.data.test_set.images
    # A conditional model is evaluated on (image, label) pairs: figures of p(x|y).
    labels = run.data.test_set.labels if model.model_inputs.conditional else None
    seconds = {}
    with _timed(seconds, "negative_elbo", f"Negative ELBO on {len(images):,} test images"):
        elbo = evaluate_losses(
            model, images, labels, seed=run.config.test_seed, batch_size=EVALUATION_BATCH_SIZE
        )
    subset = images[:iwae_examples]
    with _timed(seconds, "iwae", f"IWAE estimate, k={k}, on {len(subset):,} images"):
        log_likelihood = importance_weighted_log_likelihood(
            model, subset, k=k, seed=seed, progress=_Progress(),
            labels=None if labels is None else labels[:iwae_examples],
        )  # fmt: skip
    protocol = _protocol(run, k, len(subset), seed, seconds["iwae"])
    with _timed(seconds, "active_units", "Active units"):
        means, _ = model.encode(images, labels)
    with _timed(seconds, "pictures", "Pictures"):
        interpolation = _write_pictures(run, means, autoencoder, seed, interpolate)
    report = {
        **_figures(run, elbo, log_likelihood, k, means),
        "protocol": protocol,
        "gaussian": _gaussian_figures(model, images, labels),
        "autoencoder": _autoencoder_figures(autoencoder, run.data.test_set),
        "interpolation": interpolation,
        "seconds": seconds,
        "units": f"{UNITS} unless said otherwise",
    }
    # The per-image estimates, for comparing runs image by image (keras-vae compare).
    estimates = io.BytesIO()
    np.save(estimates, log_likelihood)
    write_bytes_atomically(run.folder.log_likelihoods, estimates.getvalue())
    write_bytes_atomically(run.folder.report_json, json.dumps(report, indent=2).encode())
    markdown = _markdown(report, run.folder.report_pictures.name)
    write_bytes_atomically(run.folder.report_markdown, markdown.encode())
    return report


@contextlib.contextmanager
def _timed(seconds, name, description):
    """Times a step into `seconds[name]`, saying when it starts and ends."""
    print(f"{description} ...", flush=True)
    started = time.perf_counter()
    yield
    seconds[name] = time.perf_counter() - started
    print(f"  done in {seconds[name]:.1f} s", flush=True)


class _Progress:
    """Prints how far a long step is, once after half a minute (so a long estimate
    says early how long it will take), then once per tenth: readable in a log file."""

    def __init__(self, first_after=30.0):
        self.started = time.perf_counter()
        self.first_after = first_after
        self.shown = 0
        self.spoken = False

    def __call__(self, done, total):
        tenth = 10 * done // total
        elapsed = time.perf_counter() - self.started
        early = not self.spoken and elapsed >= self.first_after
        if (tenth > self.shown or early) and done < total:
            self.shown, self.spoken = tenth, True
            print(
                f"  {done:,} of {total:,} images, {elapsed:.0f} s "
                f"(about {elapsed * (total - done) / done:.0f} s left)",
                flush=True,
            )


def _figures(run, elbo, log_likelihood, k, means):
    """The report's likelihood figures and latent statistics."""
    model = run.model
    dimensions = math.prod(model.image_shape)
    active, variances = active_units(means)
    return {
        "run_dir": str(run.folder.path.resolve()),
        "model": model.name,
        "setting": _setting(run, model),
        "test_set": run.data.test_set.description,
        "test_examples": len(run.data.test_set.images),
        "negative_elbo": elbo["loss"],
        "reconstruction_loss": elbo["reconstruction_loss"],
        "kl_loss": elbo["kl_loss"],
        "negative_elbo_bits_per_dim": bits_per_dim(elbo["loss"], dimensions),
        "iwae": {
            "k": k,
            "examples": len(log_likelihood),
            **likelihood_figures(log_likelihood, model.image_shape),
        },
        "active_units": active,
        "latent_dim": model.latent_dim,
        "posterior_mean_variances": variances.tolist(),
    }


def _protocol(run, k, examples, seed, estimate_seconds):
    """How the IWAE figure was produced: data, split, binarisation, k, training and
    estimate times; `published` says whether it is the published tables' protocol."""
    config, data, summary = run.config, run.data, run.summary
    test = data.test_set
    return {
        "published": bool(
            k >= PUBLISHED_K and examples == len(test.images) and config.binarize
            and config.max_test_examples is None
        ),
        "test_set": test.description,
        "k": k,
        "examples": examples,
        "seed": seed,
        "train_examples": data.train_examples,
        "validation_examples": config.validation_examples,
        "epochs": len(summary.history.get("loss", [])),
        "training_seconds": float(sum(summary.epoch_seconds)),
        "estimate_seconds": estimate_seconds,
    }  # fmt: skip


def class_grid(model, seed, columns=10):
    """A conditional model's samples, a row per class, the same latent vectors in every
    row: each column keeps its z (its style) while the label changes the class.

    Returns:
        An array `(classes * columns, H, W, C)`, row by row.
    """
    z = np.random.default_rng(seed).standard_normal((columns, model.latent_dim))
    classes = model.model_inputs.class_rows(columns)
    return model.decode(np.tile(z, (len(classes) // columns, 1)).astype("float32"), classes)


def _gaussian_figures(model, images, labels):
    """A Gaussian likelihood's scale, and the reconstructions' mean squared error per
    pixel (the tutorials' "MSE", which is not a likelihood); `None` for other likelihoods."""
    if model.likelihood.distribution != "gaussian":
        return None
    reconstructed = model.reconstruct(images, labels)
    return {
        "scale": float(np.exp(model.likelihood.log_scale.numpy())),
        "scale_learned": model.likelihood.scale is None,
        "reconstruction_mse_per_pixel": float(np.mean((images - reconstructed) ** 2)),
    }


def _write_pictures(run, means, autoencoder, seed, interpolate):
    """Writes the report's pictures; returns the interpolation's two class names
    (`None` for a conditional model, whose samples are a grid by class instead)."""
    model, test, pictures = run.model, run.data.test_set, run.folder.report_pictures
    pictures.mkdir(exist_ok=True)
    conditional = model.model_inputs.conditional
    if conditional:
        write_png(pictures / "samples.png", class_grid(model, seed), columns=10)
    else:
        write_png(pictures / "samples.png", model.sample(64, seed=seed), columns=8)
    shown = test.images[:24]
    reconstructed = model.reconstruct(shown, test.labels[:24] if conditional else None)
    pairs = np.stack([shown, reconstructed], axis=1)
    write_png(pictures / "reconstructions.png", pairs.reshape((-1,) + model.image_shape), 12)
    plot_latent_space(means, test.labels, test.class_names, pictures / "latent_space.png")
    if model.latent_dim == 2:
        write_png(pictures / "manifold.png", latent_manifold(model), columns=15)
    plot_loss_curves(run.summary.history, pictures / "loss_curves.png")
    if conditional:
        return None
    first, second = _two_classes(test.labels, test.class_names, interpolate)
    pair = (test.images[first], test.images[second])
    panels = {"VAE": model.interpolate(*pair, steps=12)}
    if autoencoder is not None:
        panels["autoencoder"] = autoencoder.model.interpolate(*pair, steps=12)
    write_gif(pictures / "interpolation.gif", panels)
    # The same paths as a still: one row per model.
    write_png(pictures / "interpolation.png", np.concatenate(list(panels.values())), columns=12)
    names = test.class_names
    if not names:
        return {"from": "test image 1", "to": f"test image {second + 1}", "rows": list(panels)}
    return {"from": names[test.labels[first]], "to": names[test.labels[second]],
            "rows": list(panels)}  # fmt: skip


def _autoencoder_figures(autoencoder, test):
    if autoencoder is None:
        return None
    losses = evaluate_losses(autoencoder.model, test.images, batch_size=EVALUATION_BATCH_SIZE)
    return {
        "run_dir": str(autoencoder.folder.path.resolve()),
        "test_reconstruction_loss": losses["reconstruction_loss"],
        "epochs": autoencoder.config.epochs,
    }


def _two_classes(labels, class_names, chosen):
    """Indices of two test images of different classes: the first of each class
    named in `chosen`, or the first image and the first of another class."""
    if chosen is None:
        # Unlabelled images (no class names): the first two.
        return 0, int(np.argmax(labels != labels[0])) if class_names else 1
    unknown = [name for name in chosen if name not in class_names]
    if unknown or len(chosen) != 2 or chosen[0] == chosen[1]:
        raise ValueError(
            f"Expected two different class names among {list(class_names)} to interpolate "
            f"between. Received: {list(chosen)}."
        )
    indices = [class_names.index(name) for name in chosen]
    return tuple(int(np.argmax(labels == index)) for index in indices)


def _setting(run, model):
    """What the figures are, from the data and what the likelihood says of itself."""
    likelihood = model.likelihood
    data = f"{run.data.test_set.description}, {likelihood.distribution} likelihood"
    if model.model_inputs.conditional:
        data += (
            ", a conditional model given each image's label: every figure is of p(x|y), "
            "lower than an unconditional model's p(x) by what the label tells"
        )
    if likelihood.discrete and run.config.binarize:
        return (
            f"{data}: the setting papers report; the figures bound a real negative log-likelihood"
        )
    if likelihood.discrete:
        return (
            f"{data}: on grey levels this is a cross-entropy, not a negative "
            "log-likelihood, and is not comparable with papers"
        )
    return (
        f"{data}: the figures are negative log-densities of continuous pixels, not "
        "comparable with likelihoods of discrete data"
    )


def _markdown(report, pictures):
    """The report as Markdown; `pictures` is the pictures' folder beside it."""
    return "\n".join([*_figure_lines(report), *_picture_lines(report, pictures)])


def _figure_lines(report):
    iwae = report["iwae"]
    lines = [
        f"# Evaluation of {report['model']}",
        "",
        f"Setting: {report['setting']}.",
        "",
        "| figure | nats per example | bits per dimension |",
        "| --- | ---: | ---: |",
        f"| negative ELBO ({report['test_examples']} test images) | "
        f"{report['negative_elbo']:.2f} | {report['negative_elbo_bits_per_dim']:.4f} |",
        f"| reconstruction | {report['reconstruction_loss']:.2f} | |",
        f"| KL | {report['kl_loss']:.2f} | |",
        f"| IWAE negative log-likelihood, k={iwae['k']} ({iwae['examples']} test images, "
        f"±{iwae['standard_error']:.2f} s.e.) | {iwae['negative_log_likelihood']:.2f} | "
        f"{iwae['bits_per_dim']:.4f} |",
        "",
        _protocol_line(report["protocol"]),
        "",
        f"Active latent units (variance of the posterior mean > 0.01): "
        f"**{report['active_units']} of {report['latent_dim']}**.",
        "",
    ]
    gaussian = report["gaussian"]
    if gaussian:
        how = "learned" if gaussian["scale_learned"] else "fixed"
        mse = gaussian["reconstruction_mse_per_pixel"]
        lines += [
            f"The nats above are negative log-densities under N(x; decoder mean, σ²) per "
            f"pixel with the {how} σ = {gaussian['scale']:.4f} (pixels in [0, 1]). The "
            f"reconstructions' mean squared error is {mse:.5f} per pixel (an error, not a "
            "likelihood).",
            "",
        ]
    if report["autoencoder"]:
        lines += [
            f"The autoencoder with the same encoder and decoder reconstructs the test set at "
            f"{report['autoencoder']['test_reconstruction_loss']:.2f} nats per example "
            "(it has no KL term and no likelihood bound).",
            "",
        ]
    return lines


def _protocol_line(protocol):
    validation = (
        f"{protocol['validation_examples']:,} held out for validation"
        if protocol["validation_examples"] else "validated on the test set"
    )  # fmt: skip
    line = (
        f"Protocol: IWAE with k={protocol['k']:,} importance samples (seed {protocol['seed']}) "
        f"on {protocol['examples']:,} images of {protocol['test_set']}; trained "
        f"{protocol['epochs']} epochs on {protocol['train_examples']:,} examples ({validation}) "
        f"in {protocol['training_seconds'] / 60:.1f} min; the estimate took "
        f"{protocol['estimate_seconds'] / 60:.1f} min."
    )
    if protocol["published"]:
        return f"{line} This is the protocol of the published likelihood tables."
    return (
        f"{line} Not the published tables' protocol (k={PUBLISHED_K:,} on the whole "
        "binarised test set): compare with papers after `--protocol published`."
    )


def _picture_lines(report, pictures):
    conditional = report["interpolation"] is None
    lines = [
        "Samples from the prior, a row per class, the same z in each column:"
        if conditional
        else "Samples from the prior:",
        "",
        f"![samples]({pictures}/samples.png)",
        "",
        "Test images and their reconstructions (pairs):",
        "",
        f"![reconstructions]({pictures}/reconstructions.png)",
        "",
        f"![latent space]({pictures}/latent_space.png)",
        "",
    ]
    if report["latent_dim"] == 2:
        lines += ["The 2-D latent manifold:", "", f"![manifold]({pictures}/manifold.png)", ""]
    lines += [f"![loss curves]({pictures}/loss_curves.png)", ""]
    if not conditional:
        panels = "VAE (left) and autoencoder (right)" if report["autoencoder"] else "VAE"
        rows = "VAE (top) and autoencoder (bottom)" if report["autoencoder"] else "VAE"
        lines += [
            f"Latent interpolation from a test image of class {report['interpolation']['from']}"
            f" to one of class {report['interpolation']['to']}, {panels}:",
            "",
            f"![interpolation]({pictures}/interpolation.gif)",
            "",
            f"The same paths, {rows}:",
            "",
            f"![interpolation, still]({pictures}/interpolation.png)",
            "",
        ]
    return [
        *lines,
        "Time taken (s): "
        + ", ".join(f"{name} {seconds:.1f}" for name, seconds in report["seconds"].items())
        + ".",
        "",
    ]


def run(args):
    """`keras-vae evaluate`: evaluates the run and prints the figures."""
    k, examples = PROTOCOLS[args.protocol]
    report = evaluate_run(
        args.run_dir, args.autoencoder_run, args.k or k,
        examples if args.iwae_examples is None else args.iwae_examples,
        interpolate=args.interpolate,
    )  # fmt: skip
    iwae = report["iwae"]
    print(
        f"\n{report['model']} on {report['test_examples']} test images "
        f"({report['setting'].split(':')[0]}):\n"
        f"  negative ELBO {report['negative_elbo']:.2f} nats "
        f"({report['negative_elbo_bits_per_dim']:.4f} bits/dim) = reconstruction "
        f"{report['reconstruction_loss']:.2f} + KL {report['kl_loss']:.2f}\n"
        f"  IWAE NLL (k={iwae['k']}, {iwae['examples']} images) "
        f"{iwae['negative_log_likelihood']:.2f} ± {iwae['standard_error']:.2f} nats "
        f"({iwae['bits_per_dim']:.4f} bits/dim)\n"
        f"  {_protocol_line(report['protocol'])}\n"
        f"  active units {report['active_units']} of {report['latent_dim']}\n"
        f"  took "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in report["seconds"].items())
        + f"\nReport: {Path(args.run_dir).resolve() / 'report.md'}"
    )


if __name__ == "__main__":
    from pipelines.cli import run_module

    run_module(__spec__.name)
