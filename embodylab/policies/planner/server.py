"""Any planner as an OpenAI-compatible HTTP server: `GET /v1/models`, `POST /v1/chat/completions`.

The last user message of a chat completion is a planning request in `format_request`'s format (facts,
entities, instruction); the answer's `choices[0].message.content` is the plan text. So `HTTPPlanner`
pointed at a `PlannerServer(planner)` plans exactly as `planner` does, and any OpenAI client can ask too.
`max_tokens` and `temperature` are accepted and checked but do not change the served planner's decoding.
The server binds to 127.0.0.1 unless told otherwise, and refuses a non-loopback address unless
`allow_remote=True`: it has no rate limits and, without `api_key`, no authentication.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from embodylab.policies.planner.planners import Planner, format_request, parse_request

__all__ = ["PlannerServer", "format_request", "parse_request"]

MAX_REQUEST_BYTES = 1 << 20


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _RequestError(Exception):
    def __init__(
        self, status: int, message: str, kind: str = "invalid_request_error", code: str | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code


class PlannerServer:
    """Serve `planner` (anything with `plan(instruction, facts, entities) -> PlannerOutput`) from a
    background thread. `port=0` takes a free port; `url` is the address once started. With `api_key`
    requests need `Authorization: Bearer <api_key>`."""

    def __init__(
        self,
        planner: Planner,
        host: str = "127.0.0.1",
        port: int = 0,
        model_id: str | None = None,
        allow_remote: bool = False,
        api_key: str | None = None,
    ):
        if not allow_remote and not is_loopback(host):
            raise ValueError(
                f"host {host!r} is not a loopback address: the planner server binds to 127.0.0.1, ::1 or "
                "localhost unless allow_remote=True is passed"
            )
        self.planner, self.host, self.port = planner, host, port
        self.model_id = model_id or getattr(planner, "model_id", None) or type(planner).__name__
        self.api_key = api_key
        self.created = int(time.time())
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the planner server is not started: call start()")
        host, port = self._httpd.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> PlannerServer:
        handler = type("Handler", (_Handler,), {"server_config": self})
        server_class = ThreadingHTTPServer
        if ":" in self.host:
            server_class = type(
                "ThreadingHTTPServerV6", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6}
            )
        self._httpd = server_class((self.host, self.port), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="planner-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join()
            self._httpd = self._thread = None

    def __enter__(self) -> PlannerServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def models(self) -> dict:
        return {
            "object": "list",
            "data": [
                {"id": self.model_id, "object": "model", "created": self.created, "owned_by": "embodylab"}
            ],
        }

    def chat_completion(self, request: object) -> dict:
        """The OpenAI chat-completion answer to a parsed request body; `_RequestError` for a bad one."""
        if not isinstance(request, dict):
            raise _RequestError(400, "the request body must be a JSON object")
        model = request.get("model", self.model_id)
        if model != self.model_id:
            raise _RequestError(
                404,
                f"model {model!r} does not exist; this server has {self.model_id!r}",
                code="model_not_found",
            )
        messages = request.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _RequestError(400, "'messages' must be a non-empty list of {role, content} objects")
        for message in messages:
            if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
                raise _RequestError(
                    400, f"each message needs a role of 'system', 'user' or 'assistant': {str(message)[:80]}"
                )
            if not isinstance(message.get("content"), str):
                raise _RequestError(400, f"each message needs a text 'content': {str(message)[:80]}")
        max_tokens = request.get("max_tokens")
        if max_tokens is not None and (
            not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
        ):
            raise _RequestError(400, f"'max_tokens' must be a positive integer, got {max_tokens!r}")
        temperature = request.get("temperature", 0.0)
        if (
            not isinstance(temperature, int | float)
            or isinstance(temperature, bool)
            or not 0 <= temperature <= 2
        ):
            raise _RequestError(400, f"'temperature' must be a number in [0, 2], got {temperature!r}")
        user = [m["content"] for m in messages if m["role"] == "user"]
        if not user:
            raise _RequestError(400, "no user message: the last user message carries the planning request")
        try:
            instruction, facts, entities = parse_request(user[-1])
        except ValueError as error:
            raise _RequestError(400, f"the last user message is not a planning request: {error}") from None
        try:
            output = self.planner.plan(instruction, facts, entities)
        except ValueError as error:
            raise _RequestError(500, f"the planner failed: {error}", kind="planner_error") from None
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_id,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": output.text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": output.prompt_tokens,
                "completion_tokens": output.completion_tokens,
                "total_tokens": output.prompt_tokens + output.completion_tokens,
            },
        }


class _Handler(BaseHTTPRequestHandler):
    server_config: PlannerServer
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a connection may sit idle: a stalled client must not hold a thread forever

    def log_message(self, format: str, *args) -> None:
        """Silent: the default logs every request to stderr."""

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header(
            "Connection", "close"
        )  # a body left unread after an error must not reach the next request
        self.close_connection = True
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client left (timed out)
            self.wfile.write(data)

    def _send_error(self, error: _RequestError) -> None:
        self._send(
            error.status,
            {"error": {"message": error.message, "type": error.kind, "param": None, "code": error.code}},
        )

    def _authorised(self) -> bool:
        key = self.server_config.api_key
        if key is None:
            return True
        given = self.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {key}".encode())

    def _route(self, method: str) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        routes = {"/v1/models": "GET", "/v1/chat/completions": "POST"}
        try:
            if path not in routes:
                raise _RequestError(
                    404,
                    f"no route {path!r}; routes: GET /v1/models, POST /v1/chat/completions",
                    code="not_found",
                )
            if routes[path] != method:
                raise _RequestError(405, f"{path} takes {routes[path]}, not {method}")
            if not self._authorised():
                raise _RequestError(
                    401, "missing or wrong API key (Authorization: Bearer ...)", kind="authentication_error"
                )
            if method == "GET":
                self._send(200, self.server_config.models())
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_REQUEST_BYTES:
                raise _RequestError(
                    413, f"request body of {length} bytes is over the limit of {MAX_REQUEST_BYTES}"
                )
            try:
                request = json.loads(self.rfile.read(length))
            except ValueError as error:
                raise _RequestError(400, f"the request body is not valid JSON: {error}") from None
            self._send(200, self.server_config.chat_completion(request))
        except _RequestError as error:
            self._send_error(error)
        except Exception as error:  # a planner bug answers 500 rather than dropping the connection
            self._send_error(_RequestError(500, f"{type(error).__name__}: {error}", kind="server_error"))

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")
