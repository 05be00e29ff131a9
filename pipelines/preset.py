"""Writes a training run's model as a preset folder that `VAE.from_preset` loads.

    keras-vae preset --run-dir runs/default --output my_preset

`make pretrained` regenerates the trained preset the package ships this way.
"""

from pathlib import Path

from keras_vae.presets import PRESETS, PRETRAINED
from keras_vae.run import load_run


def preset_from_run(run_dir, preset_dir, overwrite=False):
    """Saves the model of a run folder as a preset folder, with its test figures.

    Args:
        run_dir: a folder written by `keras-vae train`.
        preset_dir: the preset folder to write.
        overwrite: whether to replace an existing folder.

    Returns:
        The preset's metadata, as a dict.
    """
    run = load_run(run_dir)
    config = run.config
    description = PRESETS[config.preset]["description"]
    if config.preset in PRETRAINED:
        description += f" Trained on {PRETRAINED[config.preset]}."
    provenance = run.summary.provenance()
    return run.model.save_to_preset(preset_dir, description, provenance, overwrite=overwrite)


def run(args):
    """`keras-vae preset`: writes the preset and prints where it is."""
    metadata = preset_from_run(args.run_dir, args.output, args.overwrite)
    test = metadata["evaluation"]["test"]
    print(
        f"Preset written: {Path(args.output).resolve()} "
        f"({metadata['parameter_count']:,} parameters, test loss {test['loss']:.2f})"
    )


if __name__ == "__main__":
    from pipelines.cli import run_module

    run_module(__spec__.name)
