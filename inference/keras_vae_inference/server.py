"""Serving a bundle over HTTP: TensorFlow Serving's REST API and the Open Inference Protocol (V2).

    keras-vae-serve exported/default --port 8080

The models (`keras_vae_inference.served_models`) answer TensorFlow Serving's
REST API (`POST /v1/models/<name>:predict` with `instances` or `inputs`,
`GET /v1/models/<name>`) and the Open Inference Protocol (`POST
/v2/models/<name>/infer` with JSON or binary tensors, `GET /v2/models/<name>`,
`/v2/health/ready`), the two protocols of TensorFlow Serving and Triton. A bad
request gets a 4xx whose JSON `error` names the problem. Requests that arrive
while a model is busy run together as one batch. Worker processes, one per core,
share the port. It binds 127.0.0.1 unless
told otherwise.

The application (`keras_vae_inference.application`) is a plain ASGI callable
run by uvicorn with httptools and uvloop: that is what lets one Python process
keep up with Triton's C++ front end (docs/benchmarks.md, "Serving").
"""

import argparse
import functools
import gc
import json
import logging
import os

from keras_vae_inference.batcher import MAX_BATCH_ROWS
from keras_vae_inference.bundle import BundleError
from keras_vae_inference.exported_vae import ExportedVAE

# The largest request body read; a larger one is refused before it is read.
MAX_BODY_BYTES = 64 * 2**20


# The longest a request body may take to arrive after its headers, in seconds.
BODY_TIMEOUT = 30.0
# The longest a request's headers may take, from the connection opening or the
# previous answer, in seconds.
HEADER_TIMEOUT = 10.0
# Connections one worker holds; past them, requests get a 503.
MAX_CONNECTIONS = 1000

# serve() leaves the settings here for each worker process's application.
_SETTINGS = "KERAS_VAE_SERVE_SETTINGS"


@functools.cache
def worker_settings():
    """The settings `serve` left for its worker processes, as a dict."""
    return json.loads(os.environ[_SETTINGS])


def application_from_environment():
    """The ASGI application of one worker process, from the settings `serve` left for it."""
    from keras_vae_inference.application import Application
    from keras_vae_inference.served_models import served_models

    settings = worker_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # Spinning onnxruntime threads would take the event loop's cores.
    vae = ExportedVAE(
        settings["bundle"], threads=settings["threads"], version=settings["version"], spinning=False
    )
    models = served_models(vae, settings["max_batch_rows"])
    # What is loaded by now lives as long as the process. Frozen, it is left out
    # of the collector's passes, which otherwise walk it all (about 10 ms each, a
    # stall a busy worker's slowest requests wait through).
    gc.collect()
    gc.freeze()
    return Application(models, settings["max_body_bytes"], settings["body_timeout"])


def serve(bundle, host="127.0.0.1", port=8080, version=None, workers=None, threads=None,
          max_batch_rows=MAX_BATCH_ROWS, max_body_bytes=MAX_BODY_BYTES,
          body_timeout=BODY_TIMEOUT, header_timeout=HEADER_TIMEOUT,
          max_connections=MAX_CONNECTIONS):  # fmt: skip
    """Serves a bundle's models (`keras_vae_inference.served_models`) until interrupted.

    Each worker process loads the bundle and answers the connections it
    accepts on the shared port, with a batcher of its own: the processes parse
    HTTP on every core at once, as Triton's front end does with threads.

    Args:
        bundle: the bundle folder.
        host: the address to bind: `127.0.0.1` serves this machine only,
            `0.0.0.0` every network interface.
        port: the HTTP port.
        version: the bundle version, or `None` for the latest.
        workers: the worker processes, or `None` for one per core.
        threads: onnxruntime threads per worker, or `None` for the cores
            shared among the workers (at least one).
        max_batch_rows: the most rows of queued requests run together.
        max_body_bytes: the largest request body read.
        body_timeout: seconds a request body may take to arrive after its headers.
        header_timeout: seconds a request's headers may take to arrive, from the
            connection opening or the previous answer.
        max_connections: connections each worker holds; past them, requests get a 503.
    """
    # The server's own dependency (the `serve` extra) is imported here, so that
    # main() can name the extra when it is missing.
    import uvicorn

    cores = len(os.sched_getaffinity(0))
    workers = workers or cores
    settings = {
        "bundle": str(bundle),
        "version": version,
        "threads": threads or max(1, cores // workers),
        "max_batch_rows": max_batch_rows,
        "max_body_bytes": max_body_bytes,
        "body_timeout": body_timeout,
        "header_timeout": header_timeout,
    }
    os.environ[_SETTINGS] = json.dumps(settings)
    uvicorn.run(
        f"{__name__}:application_from_environment", factory=True, workers=workers,
        host=host, port=port, loop="uvloop", lifespan="on", limit_concurrency=max_connections,
        http="keras_vae_inference.http_protocol:HeaderDeadlineProtocol",
        access_log=False, log_level="warning", proxy_headers=False, server_header=False,
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
    cores = len(os.sched_getaffinity(0))
    parser.add_argument(
        "--workers",
        type=int,
        help=f"worker processes sharing the port (default: one per core, {cores})",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="onnxruntime threads per worker (default: the cores shared among the workers)",
    )
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
    parser.add_argument(
        "--body-timeout",
        type=float,
        default=BODY_TIMEOUT,
        help=f"seconds a request body may take to arrive after its headers; a slower one "
        f"gets a 408 and the connection is closed (default {BODY_TIMEOUT:g})",
    )
    parser.add_argument(
        "--header-timeout",
        type=float,
        default=HEADER_TIMEOUT,
        help=f"seconds a request's headers may take, from the connection opening or the "
        f"previous answer; a slower one gets a 408 and the connection is closed "
        f"(default {HEADER_TIMEOUT:g})",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=MAX_CONNECTIONS,
        help=f"connections each worker holds; past them, requests get a 503 "
        f"(default {MAX_CONNECTIONS})",
    )
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"Expected --port between 1 and 65535. Received: {args.port}")
    for option in ("body_timeout", "header_timeout"):
        value = getattr(args, option)
        if not 0 < value < float("inf"):
            parser.error(
                f"Expected --{option.replace('_', '-')} above 0 seconds. Received: {value}"
            )
    for option in ("workers", "threads", "max_batch_rows", "max_body_bytes", "max_connections"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"Expected --{option.replace('_', '-')} of at least 1. Received: {value}")
    try:
        # Read and checked here, so that a bad bundle stops the command before
        # any worker starts; each worker loads its own.
        vae = ExportedVAE(args.bundle, version=args.version)
    except (BundleError, ValueError) as error:
        parser.error(str(error))
    try:
        import orjson  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        parser.error('The server needs its extra: pip install "keras-vae-inference[serve]".')
    workers = args.workers or cores
    names = "decoder, encoder, sampler" + (
        ", top_decoder, top_encoder" if vae.model_inputs.two_level else ""
    )
    print(
        f"Serving {vae.directory} version {vae.version} on http://{args.host}:{args.port} "
        f"with {workers} worker{'s' * (workers > 1)}: models {names}.",
        flush=True,
    )
    serve(vae.directory, args.host, args.port, vae.version, workers, args.threads,
          args.max_batch_rows, args.max_body_bytes, args.body_timeout, args.header_timeout,
          args.max_connections)  # fmt: skip


if __name__ == "__main__":
    main()
