"""Serving a bundle over HTTP: TensorFlow Serving's REST API and the Open Inference Protocol (V2).

    keras-vae-serve exported/default --port 8080

The models (`keras_vae_inference.served_models`) answer TensorFlow Serving's
REST API (`POST /v1/models/<name>:predict` with `instances` or `inputs`,
`GET /v1/models/<name>`) and the Open Inference Protocol (`POST
/v2/models/<name>/infer` with JSON or binary tensors, `GET /v2/models/<name>`,
`/v2/health/ready`), the two protocols of TensorFlow Serving and Triton. A bad
request gets a 4xx whose JSON `error` names the problem. Requests that arrive
while a model is busy run together as one batch. It binds 127.0.0.1 unless
told otherwise.

The application (`keras_vae_inference.application`) is a plain ASGI callable
run by uvicorn with httptools and uvloop: that is what lets one Python process
keep up with Triton's C++ front end (docs/benchmarks-serving.md).
"""

import argparse
import logging

from keras_vae_inference.batcher import MAX_BATCH_ROWS
from keras_vae_inference.bundle import BundleError
from keras_vae_inference.exported_vae import ExportedVAE

# The largest request body read; a larger one is refused before it is read.
MAX_BODY_BYTES = 64 * 2**20


def serve(vae, host="127.0.0.1", port=8080, max_batch_rows=MAX_BATCH_ROWS,
          max_body_bytes=MAX_BODY_BYTES):  # fmt: skip
    """Serves a bundle's decoder, encoder and sampler until interrupted.

    Args:
        vae: the bundle, as an `ExportedVAE`.
        host: the address to bind: `127.0.0.1` serves this machine only,
            `0.0.0.0` every network interface.
        port: the HTTP port.
        max_batch_rows: the most rows of queued requests run together.
        max_body_bytes: the largest request body read.
    """
    # The server's own dependencies (the `serve` extra) are imported here, so
    # that main() can name the extra when they are missing.
    import uvicorn

    from keras_vae_inference.application import Application
    from keras_vae_inference.served_models import served_models

    models = served_models(vae, max_batch_rows)
    application = Application(models, max_body_bytes=max_body_bytes)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    print(
        f"Serving {vae.directory} version {vae.version} on http://{host}:{port}: models "
        f"{', '.join(models)}.",
        flush=True,
    )
    uvicorn.run(
        application, host=host, port=port, http="httptools", loop="uvloop",
        lifespan="on", access_log=False, log_level="warning", proxy_headers=False,
        server_header=False,
    )  # fmt: skip


def main(argv=None, prog="keras-vae-serve"):
    """Serves a bundle until interrupted: `keras-vae-serve BUNDLE [options]`.

    Args:
        argv: the arguments, or `None` for the command line's.
        prog: the command's name in help and error messages.
    """
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", help="export bundle folder, e.g. exported/default")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1, this machine only; 0.0.0.0 for every "
        "network interface)",
    )
    parser.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    parser.add_argument("--version", type=int, help="bundle version (default: the latest)")
    parser.add_argument("--threads", type=int, help="onnxruntime threads (default: all cores)")
    parser.add_argument(
        "--max-batch-rows",
        type=int,
        default=MAX_BATCH_ROWS,
        help=f"most rows of queued requests run together; 1 runs each alone "
        f"(default {MAX_BATCH_ROWS})",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=MAX_BODY_BYTES,
        help=f"largest request body read (default {MAX_BODY_BYTES})",
    )
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"Expected --port between 1 and 65535. Received: {args.port}")
    if args.max_batch_rows < 1:
        parser.error(f"Expected --max-batch-rows of at least 1. Received: {args.max_batch_rows}")
    if args.max_body_bytes < 1:
        parser.error(f"Expected --max-body-bytes of at least 1. Received: {args.max_body_bytes}")
    try:
        # Spinning onnxruntime threads would take the event loop's cores.
        vae = ExportedVAE(args.bundle, threads=args.threads, version=args.version, spinning=False)
    except (BundleError, ValueError) as error:
        parser.error(str(error))
    try:
        import orjson  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        parser.error('The server needs its extra: pip install "keras-vae-inference[serve]".')
    serve(vae, args.host, args.port, args.max_batch_rows, args.max_body_bytes)


if __name__ == "__main__":
    main()
