"""Serves an export bundle with the real Triton Inference Server from the `nvidia-pytriton` wheel.

    .venv-triton/bin/python examples/triton/serve.py exported/default --http-port 8000

The wheel ships Triton's `tritonserver` binary (core 2.51) with its python
backend but no onnxruntime backend, so the bundle is served through the python
backend's configuration it ships (`<part>/configs/python.pbtxt`, loaded with
`--model-config-name=python`), whose `model.py` runs the same `model.onnx` in
onnxruntime. Run it with the Python of the environment that holds the wheel,
NumPy and onnxruntime (`make triton-deps` makes `.venv-triton`): Triton's Python
stub loads its packages from there. Arguments after `--` go to `tritonserver`.
"""

import argparse
import importlib.util
import os
import sys
import sysconfig
from pathlib import Path


def backend_directory(triton):
    """A backend folder holding the python backend and the stub for this interpreter.

    Args:
        triton: the wheel's `pytriton/tritonserver` folder.

    Returns:
        The folder to pass as `--backend-directory`.
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = triton / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        sys.exit(f"The wheel has no python backend stub for Python {version}: {stub}.")
    folder = Path(sys.prefix) / "share" / "keras-vae-triton" / "backends"
    python = folder / "python"
    python.mkdir(parents=True, exist_ok=True)
    for source in [*(triton / "backends" / "python").iterdir(), stub]:
        link = python / source.name
        if not link.is_symlink() or link.resolve() != source.resolve():
            link.unlink(missing_ok=True)
            link.symlink_to(source)
    return folder


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path, help="export bundle folder, e.g. exported/default")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--http-port", type=int, default=8000, help="HTTP port (default 8000)")
    parser.add_argument("--grpc-port", type=int, default=8001, help="gRPC port (default 8001)")
    parser.epilog = "Arguments after -- go to tritonserver, e.g. -- --log-verbose=1."
    arguments = sys.argv[1:]
    split = arguments.index("--") if "--" in arguments else len(arguments)
    args = parser.parse_args(arguments[:split])
    if not (args.bundle / "manifest.json").is_file():
        parser.error(f"Expected an export bundle. Received: {args.bundle} (no manifest.json).")
    spec = importlib.util.find_spec("pytriton")
    if spec is None:
        parser.error('No Triton here: run it with the Python of an environment with '
                     '"nvidia-pytriton" (make triton-deps makes .venv-triton).')  # fmt: skip
    triton = Path(spec.origin).parent / "tritonserver"
    environment = dict(os.environ)
    # The stub links libpython by soname: this interpreter's own must come first,
    # or the system's is loaded under this environment's standard library.
    libraries = [
        sysconfig.get_config_var("LIBDIR"),
        str(triton.parent.parent / "nvidia_pytriton.libs"),
    ]
    environment["LD_LIBRARY_PATH"] = os.pathsep.join(
        filter(None, [*libraries, environment.get("LD_LIBRARY_PATH")])
    )
    environment["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), environment["PATH"]])
    command = [
        str(triton / "bin" / "tritonserver"),
        f"--model-repository={args.bundle.resolve()}",
        "--model-config-name=python",
        f"--backend-directory={backend_directory(triton)}",
        f"--http-address={args.host}",
        f"--http-port={args.http_port}",
        f"--grpc-address={args.host}",
        f"--grpc-port={args.grpc_port}",
        "--allow-metrics=false",
        *arguments[split + 1 :],
    ]
    print(" ".join(command), flush=True)
    os.execve(command[0], command, environment)


if __name__ == "__main__":
    main()
