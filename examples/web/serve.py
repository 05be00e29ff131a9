"""Serves the latent-space explorer and an export bundle on 127.0.0.1.

    python3 examples/web/serve.py exported/default [--compare BUNDLE] [--port 8000]

then open the address it prints. With `--compare`, a second bundle (the
autoencoder of the same data, say) interpolates beside the first. The page
comes from this folder, onnxruntime-web from its node_modules (`make web-deps`
installs it) and the models from the bundles: nothing from a CDN. The
responses carry the cross-origin isolation headers (COOP/COEP) that
multi-threaded WebAssembly needs. Standard library only.
"""

import argparse
import functools
import http.server
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNTIME = HERE / "node_modules" / "onnxruntime-web" / "dist"
TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
         ".onnx": "application/octet-stream", ".json": "application/json"}  # fmt: skip


class ExplorerHandler(http.server.SimpleHTTPRequestHandler):
    """Maps `/ort/` to onnxruntime-web, `/bundle/` and `/compare/` to the bundles, the rest
    to the page."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **TYPES}

    def __init__(self, *args, bundle, compare, **kwargs):
        self.bundle = bundle
        self.compare = compare
        super().__init__(*args, directory=str(HERE), **kwargs)

    def translate_path(self, path):
        roots = {"/ort/": RUNTIME, "/bundle/": self.bundle, "/compare/": self.compare}
        for prefix, root in roots.items():
            if root is not None and path.startswith(prefix):
                # The parent class resolves the rest safely (no `..` above its directory).
                self.directory = str(root)
                return super().translate_path("/" + path[len(prefix) :])
        self.directory = str(HERE)
        return super().translate_path(path)

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format, *args):
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", help="export bundle folder, e.g. exported/default")
    parser.add_argument("--compare", help="a second bundle to interpolate beside the first")
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000)")
    args = parser.parse_args(argv)
    bundle, compare = (None if path is None else Path(path).resolve()
                       for path in (args.bundle, args.compare))  # fmt: skip
    for path, given in ((bundle, args.bundle), (compare, args.compare)):
        if path is not None and not (path / "manifest.json").is_file():
            parser.error(f"Expected an export bundle with a manifest.json. Received: {given}")
    if not RUNTIME.is_dir():
        parser.error(f"onnxruntime-web is missing from {RUNTIME}: run `make web-deps`.")
    handler = functools.partial(ExplorerHandler, bundle=bundle, compare=compare)
    with http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler) as server:
        query = "?compare=compare/" if compare else ""
        print(f"Serving {bundle} at http://127.0.0.1:{server.server_port}/{query}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
