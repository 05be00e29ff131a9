"""The decoder in Node.js: examples/node/decode.mjs on onnxruntime-node.

`make node-deps` installs its packages. The script decodes the same latent
vectors as the Python runtimes and times its `session.run` after warm-up.
"""

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from .inference import benchmark_latents, decoder_row, keras_images, summarize_times

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "node"


def benchmark_node(model, bundle_dir, threads, batch_sizes=(1, 64)):
    """Times the bundle's decoder in Node.js with onnxruntime-node.

    Returns:
        Rows like `benchmark_decoder`'s: runtime, batch, timing, error against Keras.
    """
    node = shutil.which("node")
    if node is None or not (EXAMPLE / "node_modules" / "onnxruntime-node").is_dir():
        raise RuntimeError("Node.js or the example's packages are missing: run `make node-deps`.")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for batch in batch_sizes:
            z = benchmark_latents(model, batch)
            (scratch / "z.json").write_text(json.dumps(z.tolist()))
            files = {name: str(scratch / name) for name in ("z.json", "out.png", "values.json")}
            command = [
                node, "decode.mjs", str(Path(bundle_dir).resolve()), files["z.json"],
                files["out.png"], "--values", files["values.json"],
                "--timings", str(scratch / "times.json"), "--threads", str(threads),
            ]  # fmt: skip
            done = subprocess.run(command, cwd=EXAMPLE, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                raise RuntimeError(f"decode.mjs failed: {done.stderr.strip()}")
            values = json.loads((scratch / "values.json").read_text())
            timing = summarize_times(json.loads((scratch / "times.json").read_text())["times"])
            expected = keras_images(model, z)
            rows.append(decoder_row("onnxruntime-node", batch, timing, values["data"], expected))
    return rows
