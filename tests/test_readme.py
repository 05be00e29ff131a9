"""The README's Python code, run as written on a little real data.

Its ```python blocks run in order in one fresh interpreter, as a reader pasting
them into one session would, in a scratch folder. Two things are made small:
`load_images` gets at most 512 examples per split, and every `epochs=N` is 1.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
PREAMBLE = """
import keras_vae.data

_load_images = keras_vae.data.load_images


def _small(*args, **kwargs):
    kwargs.setdefault("max_examples", 512)
    kwargs.setdefault("data_dir", {data_dir!r})
    return _load_images(*args, **kwargs)


keras_vae.data.load_images = _small
"""


def python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_the_readme_has_python_blocks_to_run():
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 3 and "from_preset" in blocks[0]


def test_every_python_block_of_the_readme_runs(fashion_mnist_data_dir, tmp_path):
    code = "\n".join(python_blocks(README.read_text()))
    code = re.sub(r"\bepochs=\d+", "epochs=1", code)
    done = subprocess.run(
        [sys.executable, "-c", PREAMBLE.format(data_dir=fashion_mnist_data_dir) + code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # What the blocks say they write: a .keras file, a preset folder and a bundle.
    assert (tmp_path / "vae.keras").is_file()
    card = (tmp_path / "my_vae" / "README.md").read_text()
    assert "keras_vae.VAE" in card
    manifest = json.loads((tmp_path / "exported" / "my_vae" / "manifest.json").read_text())
    assert manifest["latest_version"] == 1
