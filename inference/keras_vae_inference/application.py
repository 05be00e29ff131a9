"""The server's ASGI application: routes, request bodies, errors.

Routes of TensorFlow Serving's REST API (V1) and of the Open Inference Protocol
(V2), served by a plain ASGI callable: a request's path through it is a route
match, one JSON read and one write. No route changes the server's state: models
are neither loaded nor unloaded over HTTP.
"""

import asyncio
import logging
import re
import traceback

from keras_vae_inference import open_inference, tf_serving
from keras_vae_inference.json_bodies import dumps
from keras_vae_inference.served_models import RequestError

_V2_MODEL = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?(/infer|/ready)?")
_V1_MODEL = re.compile(r"/v1/models/([^/:]+)(?:/versions/([^/:]+))?(:predict)?")
logger = logging.getLogger(__name__)


class Application:
    """The server's ASGI application.

    Args:
        models: `{name: ServedModel}`.
        name: the server's name in `GET /v2`.
        max_body_bytes: the largest request body read.
        body_timeout: seconds a request body may take to arrive after its headers.
    """

    def __init__(self, models, max_body_bytes, body_timeout, name="keras-vae-serve"):
        self.models = models
        self.name = name
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            status, body, headers = await self._route(scope, receive)
        except RequestError as error:
            logger.warning("%s %s: %d %s", scope["method"], scope["path"], error.status, error)
            status, body, headers = error.status, dumps({"error": str(error)}), {}
        except Exception:
            logger.error("%s %s: 500\n%s", scope["method"], scope["path"], traceback.format_exc())
            message = "The server failed on this request; its log has the details."
            status, body, headers = 500, dumps({"error": message}), {}
        headers = {"content-type": "application/json", **headers, "content-length": str(len(body))}
        if status == 408:
            # The rest of the body may still come: it cannot be told from a next request.
            headers["connection"] = "close"
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    async def _route(self, scope, receive):
        method, path = scope["method"], scope["path"]
        if path in ("/v2/health/live", "/v2/health/ready"):
            _allow(method, "GET")
            return 200, dumps({path.rsplit("/", 1)[1]: True}), {}
        if path in ("/v2", "/v2/"):
            _allow(method, "GET")
            metadata = {"name": self.name, "extensions": ["binary_tensor_data"]}
            return 200, dumps(metadata), {}
        if match := _V2_MODEL.fullmatch(path):
            name, version, action = match.groups()
            model = self._model(name, version)
            if action == "/infer":
                _allow(method, "POST")
                return await self._infer_v2(model, scope, receive)
            _allow(method, "GET")
            if action == "/ready":
                return 200, dumps({"name": model.name, "ready": True}), {}
            return 200, dumps(model.metadata()), {}
        if match := _V1_MODEL.fullmatch(path):
            name, version, action = match.groups()
            model = self._model(name, version)
            if action == ":predict":
                _allow(method, "POST")
                arrays, columnar = tf_serving.parse_request(await self._body(scope, receive), model)
                results = await model(model.checked(arrays))
                return 200, tf_serving.encode_response(model, results, columnar), {}
            _allow(method, "GET")
            status = {"version": str(model.version), "state": "AVAILABLE",
                      "status": {"error_code": "OK", "error_message": ""}}  # fmt: skip
            return 200, dumps({"model_version_status": [status]}), {}
        raise RequestError(f"No route {path!r:.100}: see the server's README for its routes.", 404)

    async def _infer_v2(self, model, scope, receive):
        header_length = _header(scope, open_inference.HEADER_LENGTH.encode())
        body = await self._body(scope, receive)
        request = open_inference.parse_request(body, header_length, model)
        results = await model(model.checked(request.arrays))
        body, headers = open_inference.encode_response(model, request, results)
        return 200, body, headers

    def _model(self, name, version):
        model = self.models.get(name)
        if model is None:
            raise RequestError(
                f"Model {name!r:.100} does not exist. This server has {sorted(self.models)}.", 404
            )
        if version is not None and version != str(model.version):
            raise RequestError(
                f"Model {name!r} has no version {version!r:.40}: this server serves version "
                f"{model.version}.",
                404,
            )
        return model

    async def _body(self, scope, receive):
        """The request body: a 413 once it passes the size limit, a 408 past the time limit."""
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise RequestError(_too_large(declared, self.max_body_bytes), 413)
        chunks, size = [], 0
        # asyncio.timeout's way, which Python 3.10 lacks: a timer cancels this task.
        task, expired = asyncio.current_task(), []
        timer = asyncio.get_running_loop().call_later(
            self.body_timeout, lambda: expired.append(True) or task.cancel()
        )
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise RequestError("The client closed the connection.", 400)
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise RequestError(_too_large(f"over {size}", self.max_body_bytes), 413)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
        except asyncio.CancelledError:
            if not expired:
                raise
            if hasattr(task, "uncancel"):
                task.uncancel()
            raise RequestError(
                f"Expected the request body within {self.body_timeout:g} s of its headers. "
                f"Received: {size} bytes by then. Send the body at once, or start the server "
                "with a larger --body-timeout.",
                408,
            ) from None
        finally:
            timer.cancel()


def _too_large(size, limit):
    return (
        f"Expected a request body of at most {limit} bytes. Received: {size} bytes. Send "
        "fewer rows per request, or start the server with a larger --max-body-bytes."
    )


def _allow(method, allowed):
    if method != allowed:
        raise RequestError(f"Expected {allowed} on this route. Received: {method}.", 405)


def _header(scope, name):
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
