"""Models from named presets and preset folders, KerasHub-style, and models saved as presets."""

import math
import os

from keras_vae import preset_folders
from keras_vae.architectures import ARCHITECTURES
from keras_vae.presets import PRESETS, PRETRAINED, is_two_level


class PresetConstructors:
    """`from_preset` and `save_to_preset` of the model classes (`EncoderDecoder`).

    A named preset (`keras_vae.presets`) builds its networks from the
    architecture builders, with the shipped weights where it has them; a
    folder (`keras_vae.preset_folders`) brings its own config and weights.
    """

    @classmethod
    def from_preset(
        cls, preset: str | os.PathLike, load_weights: bool | None = None, **kwargs
    ) -> "PresetConstructors":
        """Builds a model from a named preset or a preset folder, KerasHub-style.

        Named presets are in `keras_vae.presets.PRESETS`; those listed in
        `keras_vae.presets.PRETRAINED` ship trained weights with the package,
        loaded offline. A folder is one written by `save_to_preset`.

        Args:
            preset: a preset name, or the path of a preset folder.
            load_weights: `None` (the default) loads the preset's weights when
                it has them and its architecture is kept; `True` requires
                them; `False` builds the networks untrained.
            **kwargs: other arguments of the model class. `input_shape`,
                `latent_dim` and `likelihood` change a named preset's
                architecture (then it is untrained); `beta`, `seed`,
                `free_bits`, `importance_samples` and `name` apply to any preset.

        Returns:
            An instance of this class.
        """
        if load_weights not in (None, True, False):
            raise ValueError(
                f"Expected `load_weights` to be None, True or False. Received: {load_weights!r}"
            )
        if isinstance(preset, str) and preset in PRESETS:
            changed = any(kwargs.get(name) is not None for name in cls.ARCHITECTURE_ARGUMENTS)
            folder = preset_folders.pretrained_folder(preset)
            if load_weights is True and (folder is None or changed):
                reason = (
                    "the changed architecture does not fit them"
                    if folder
                    else f"it ships no weights (those that do: {sorted(PRETRAINED)})"
                )
                raise ValueError(
                    f"Preset {preset!r} cannot load weights: {reason}. Pass "
                    "load_weights=False for untrained networks."
                )
            if folder is not None and load_weights is not False and not changed:
                kept = {key: value for key, value in kwargs.items() if value is not None}
                return preset_folders.load_preset(cls, folder, **kept)
            return cls._from_architecture(preset, **kwargs)
        if isinstance(preset, (str, os.PathLike)) and preset_folders.is_preset_folder(preset):
            return preset_folders.load_preset(cls, preset, load_weights, **kwargs)
        raise ValueError(
            f"Unknown preset. Expected one of {sorted(PRESETS)}, or a folder written by "
            f"save_to_preset (holding {preset_folders.CONFIG_FILE}). Received: "
            f"preset={preset!r}"
        )

    @classmethod
    def _from_architecture(cls, name, input_shape=None, latent_dim=None, likelihood=None,
                           **kwargs):  # fmt: skip
        """Builds the untrained networks of the named preset `name`."""
        preset = PRESETS[name]
        input_shape = tuple(preset["input_shape"] if input_shape is None else input_shape)
        latent_dim = preset["latent_dim"] if latent_dim is None else latent_dim
        # Shapes and sizes of the wrong kind are refused by the networks, with their own messages.
        sizes = (*input_shape, latent_dim)
        whole = all(type(size) is int and size > 0 for size in sizes) and len(input_shape) == 3
        if whole and latent_dim > (values := math.prod(input_shape)):
            raise ValueError(
                f"Expected `latent_dim` of at most {values}, the number of values in one "
                f"{'x'.join(map(str, input_shape))} image: a code larger than the image it "
                f"encodes only adds weights. Received: latent_dim={latent_dim}"
            )
        kwargs.setdefault("name", f"{cls.__name__.lower()}_{name}")
        return cls(
            *cls._preset_networks(name, preset, input_shape, latent_dim),
            likelihood=likelihood or preset["likelihood"],
            **kwargs,
        )

    @classmethod
    def _preset_networks(cls, name, preset, input_shape, latent_dim):
        """The untrained networks of the preset `name` (`preset`, its entry), as the
        constructor takes them."""
        if is_two_level(name):
            raise ValueError(
                f"Preset {name!r} has two stochastic layers: build it with "
                f"keras_vae.HierarchicalVAE.from_preset({name!r}). Received: "
                f"{cls.__name__}.from_preset({name!r})."
            )
        return cls._encoder_and_decoder(preset, input_shape, latent_dim)

    @staticmethod
    def _encoder_and_decoder(preset, input_shape, latent_dim):
        """The untrained encoder q(z|x) and decoder p(x|z) of a preset entry."""
        build_encoder, build_decoder = ARCHITECTURES[preset["architecture"]]
        return [
            build_encoder(input_shape, latent_dim, **preset["encoder"]),
            build_decoder(input_shape, latent_dim, **preset["decoder"]),
        ]

    def save_to_preset(
        self,
        preset_dir: str | os.PathLike,
        description: str = "",
        evaluation: dict | None = None,
        overwrite: bool = False,
    ) -> dict:
        """Writes the model as a preset folder: config, weights, metadata and a model card.

        `from_preset(preset_dir)` loads it back. The folder is built beside
        `preset_dir` and renamed into place when complete.

        Args:
            preset_dir: the folder to write.
            description: one paragraph for the model card.
            evaluation: dict of figures for the metadata and the card, e.g.
                `{"test_set": ..., "test": {"loss": ...}, "units": ...}`.
            overwrite: whether to replace an existing folder.

        Returns:
            The metadata written, as a dict.
        """
        return preset_folders.save_preset(self, preset_dir, description, evaluation, overwrite)
