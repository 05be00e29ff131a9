"""Preset folders: a model's config, weights and card, as KerasHub lays them out.

`model.save_to_preset(dir)` writes one; `VAE.from_preset(dir)` reads it back.
The trained presets the package ships live in `keras_vae/pretrained/<name>/`,
in the same format, so `VAE.from_preset(name)` loads them offline.
"""

import datetime
import json
import shutil
from pathlib import Path

import keras

from keras_vae.files import (
    recover_directory,
    remove_stale_temporaries,
    replace_directory,
    temporary_directory_beside,
)
from keras_vae.versions import package_versions

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
CARD_FILE = "README.md"
PRETRAINED = Path(__file__).parent / "pretrained"
# Arguments that change the networks' shapes: the saved weights no longer fit.


def pretrained_folder(name):
    """The folder of the trained preset `name` shipped with the package, or `None`."""
    folder = PRETRAINED / name
    return folder if (folder / CONFIG_FILE).is_file() else None


def is_preset_folder(path):
    """Whether `path` is a folder written by `save_to_preset`."""
    return (Path(path) / CONFIG_FILE).is_file()


def save_preset(model, preset_dir, description="", evaluation=None, overwrite=False):
    """Writes `model` as a preset folder, built beside it and renamed into place.

    Args:
        model: a `keras_vae.VAE` or `keras_vae.Autoencoder`.
        preset_dir: the folder to write.
        description: one paragraph for the model card.
        evaluation: dict stored in the metadata and shown on the card, e.g.
            `{"dataset": ..., "test": {"loss": ...}, "units": ...}`.
        overwrite: whether to replace an existing folder.

    Returns:
        The metadata, as a dict.
    """
    preset_dir = Path(preset_dir)
    if not isinstance(description, str):
        raise ValueError(f"Expected `description` to be a string. Received: {description!r}")
    if evaluation is not None and not isinstance(evaluation, dict):
        raise ValueError(f"Expected `evaluation` to be a dict. Received: {evaluation!r}")
    recover_directory(preset_dir)
    if preset_dir.exists() and not overwrite:
        raise FileExistsError(
            f"{preset_dir} already exists. Pass overwrite=True to replace it, or choose "
            "another folder."
        )
    config = keras.saving.serialize_keras_object(model)
    # A preset is uncompiled, as in KerasHub: its user compiles it for their training.
    config.pop("compile_config", None)
    metadata = {
        "class_name": type(model).__name__,
        "image_shape": list(model.image_shape),
        "latent_dim": model.latent_dim,
        "likelihood": model.likelihood.distribution,
        "parameter_count": model.count_params(),
        "description": description,
        "evaluation": evaluation,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "packages": package_versions("keras-vae", "keras", "tensorflow"),
    }
    preset_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(preset_dir)
    work = temporary_directory_beside(preset_dir)
    try:
        (work / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        # An uncompiled copy: a preset holds the model's state (weights and
        # sampling seed), not its optimizer's moments (twice the size).
        bare = keras.saving.deserialize_keras_object(config)
        for target, source in zip(bare.variables, model.variables, strict=True):
            target.assign(source)
        bare.save_weights(work / WEIGHTS_FILE)
        (work / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
        (work / CARD_FILE).write_text(_card(preset_dir.name, metadata))
        replace_directory(work, preset_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return metadata


def load_preset(cls, preset_dir, load_weights=None, **kwargs):
    """Builds the model of a preset folder, with its weights.

    Args:
        cls: the class asked for; the preset's model must be one.
        preset_dir: a folder written by `save_preset`.
        load_weights: whether to load the weights (`None`: yes).
        **kwargs: constructor arguments to change (`seed`, `beta`, `free_bits`,
            `name`); the architecture is the preset's.

    Returns:
        An instance of `cls`.
    """
    preset_dir = Path(preset_dir)
    changed = sorted(set(kwargs) & set(cls.ARCHITECTURE_ARGUMENTS))
    if changed and load_weights is not False:
        raise ValueError(
            f"The weights of {preset_dir} fit its own architecture; {changed} would change "
            "it. Pass load_weights=False to build the changed architecture untrained. "
            f"Received: {', '.join(f'{name}={kwargs[name]!r}' for name in changed)}"
        )
    config = json.loads((preset_dir / CONFIG_FILE).read_text())
    model_class = keras.saving.get_registered_object(config.get("registered_name"))
    if model_class is None or not issubclass(model_class, cls):
        raise ValueError(
            f"Expected a preset of a {cls.__name__}. Received: {preset_dir}, a preset of "
            f"{config.get('class_name')!r}. Load it with keras_vae.{config.get('class_name')}"
            ".from_preset."
        )
    config["config"].update(kwargs)
    model = keras.saving.deserialize_keras_object(config)
    if load_weights is not False:
        model.load_weights(preset_dir / WEIGHTS_FILE)
        if "beta" in kwargs:
            # The weights file holds the saved model's beta.
            model.beta.assign(float(kwargs["beta"]))
    return model


def _card(name, metadata):
    """The model card: what the model is, how it scored, how to load it."""
    shape = "×".join(map(str, metadata["image_shape"]))
    lines = [
        f"# {name}",
        "",
        metadata["description"] or f"A keras-vae {metadata['class_name']}.",
        "",
        f"- Model: `keras_vae.{metadata['class_name']}`, "
        f"{metadata['parameter_count']:,} parameters",
        f"- Images: {shape}, {metadata['likelihood']} likelihood; "
        f"latent space: {metadata['latent_dim']} dimensions",
    ]
    evaluation = metadata["evaluation"] or {}
    if "test" in evaluation:
        figures = ", ".join(f"{key} {value:.2f}" for key, value in evaluation["test"].items())
        lines.append(
            f"- Test set ({evaluation.get('test_set') or evaluation.get('dataset', 'held out')}): "
            f"{figures} ({evaluation.get('units', 'nats per example')})"
        )
    lines += [
        f"- Made with {', '.join(f'{k} {v}' for k, v in metadata['packages'].items())}",
        "",
        "```python",
        "import keras_vae",
        "",
        f'vae = keras_vae.{metadata["class_name"]}.from_preset("path/to/{name}")',
        "images = vae.sample(16, seed=0)",
        "```",
        "",
    ]
    return "\n".join(lines)
