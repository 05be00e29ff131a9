"""Exports a trained run's networks as a verified bundle.

    keras-vae export --run-dir runs/default --name default --variants float16

Reads `model.keras` and `history.json` from the run folder, verifies the
export on test images of the run's dataset and writes it as the next version
of `exported/<name>/` (version 1 of a new bundle, or of a replaced one with
`--overwrite`).
"""

import time
from pathlib import Path

from keras_vae.explorer_data import explorer_data
from keras_vae.export import export_bundle
from keras_vae.run import load_run

# Test images the browser explorer ships with each version.
EXPLORER_IMAGES = 48


def export_run(run_dir, bundle_dir, overwrite=False, variants=()):
    """Exports the model of a training run folder.

    Args:
        run_dir: a folder written by `keras-vae train`.
        bundle_dir: the bundle folder; an existing bundle gets the next version.
        overwrite: whether to replace an existing bundle and its versions.
        variants: smaller decoders to add (`"float16"`).

    Returns:
        The manifest, as a dict.
    """
    run = load_run(run_dir)
    metadata = {
        **run.summary.provenance(),
        "run_dir": str(run.folder.path.resolve()),
        "class_names": list(run.data.test_set.class_names),
    }
    test = run.data.test_set
    conditional = run.model.model_inputs.conditional
    return export_bundle(
        run.model,
        bundle_dir,
        test.images[:64],
        test_labels=test.labels[:64] if conditional else None,
        overwrite=overwrite,
        variants=variants,
        metadata=metadata,
        explorer=None if conditional else _explorer(run),
    )


def _explorer(run):
    """The browser explorer's data: grey-level test images (the binarised ones are
    what the model saw, but noisier to look at) and the plane of the test codes."""
    test = run.data.test_set
    originals, labels = run.data.source.arrays("test", max_examples=EXPLORER_IMAGES)
    return explorer_data(
        run.model, originals, labels, test.class_names, plane_images=test.images[:2000]
    )


def run(args):
    """`keras-vae export`: exports the run and prints what was verified."""
    started = time.perf_counter()
    bundle = Path(args.output_dir) / args.name
    print(f"Exporting {args.run_dir} to {bundle}: SavedModel, ONNX, verification ...", flush=True)
    manifest = export_run(args.run_dir, bundle, args.overwrite, args.variants)
    version = manifest["latest_version"]
    entry = manifest["versions"][str(version)]
    parity = entry["parity"]
    lines = [
        f"\nExported and verified in {time.perf_counter() - started:.1f} s: "
        f"{bundle.resolve()}, version {version} (versions: {', '.join(manifest['versions'])})",
        f"  latent_dim {manifest['model']['latent_dim']}; parts (ONNX opset): "
        + ", ".join(f"{part} ({manifest['onnx']['opset'][part]})" for part in manifest["parts"]),
    ]
    for part in manifest["parts"]:
        figures = ", ".join(f"{k} {v:.2g}" for k, v in parity[part].items())
        lines.append(f"  {part} max |difference|: {figures} (limit {parity['tolerance']:g})")
    for name in [*entry["onnx"].values(), *(v["file"] for v in entry["variants"].values())]:
        lines.append(f"  {name}: {manifest['files'][name]['bytes'] / 1e3:.0f} kB")
    for name, info in entry["variants"].items():
        lines.append(
            f"  {name} decoder: max |error| vs float32 {info['max_abs_error_vs_float32']:.2g}"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    from pipelines.cli import run_module

    run_module(__spec__.name)
