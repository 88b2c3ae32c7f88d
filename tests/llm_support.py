"""A small OpenAI-compatible chat-completions server for the tests, on 127.0.0.1 (stdlib only).

The behaviour of a request is set by markers in its last user message:

* ``[slow:S]``: sleep S seconds before answering, every time; ``[slow-once:S]`` the first time only;
* ``[429xN]``, ``[500xN]``, ``[badjsonxN]``, ``[nochoicesxN]``: answer HTTP 429 / HTTP 500 / a body that is
  not JSON / JSON without ``choices`` the first N times this message is seen, then normally;
* ``[emptyxN]``: an empty message N times; ``[400]``: HTTP 400 every time.

Server-wide: ``api_key`` (other keys get 401), ``models`` (other model names get 404). A normal answer
wraps the input in a preamble and quotes, as chatty models do: ``Sure! Here's the request: "I'm looking
for <input>"``. Every request is logged (``log``: phase, model, input, status) before it is answered.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_INPUT = re.compile(r"^(?:Description|Descriptors): ", re.M)


def input_of(content: str) -> str:
    """The part of the final user message after the prompt's label."""
    m = _INPUT.search(content)
    return content[m.end():] if m else content


class FakeChatServer:
    def __init__(self, api_key: str | None = None, models: tuple[str, ...] | None = None):
        self.api_key, self.models = api_key, models
        self.phase = 1
        self.log: list[dict] = []
        self.seen: Counter = Counter()
        self.inflight = self.max_inflight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: bytes, ctype: str = "application/json", headers=()):
                try:
                    self.send_response(status)
                    self.send_header("content-type", ctype)
                    self.send_header("content-length", str(len(body)))
                    for k, v in headers:
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout)

            def _error(self, status: int, message: str, headers=()):
                body = json.dumps({"error": {"message": message, "type": "test", "code": status}}).encode()
                self._send(status, body, headers=headers)

            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    data = [{"id": m, "object": "model"} for m in (server.models or ("any",))]
                    self._send(200, json.dumps({"object": "list", "data": data}).encode())
                else:
                    self._error(404, "not found")

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                payload = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    return self._error(404, f"no route {self.path}")
                content = payload["messages"][-1]["content"]
                text = input_of(content)
                with server.lock:
                    server.seen[content] += 1
                    n = server.seen[content]
                    entry = {"phase": server.phase, "model": payload.get("model"), "input": text, "status": 200}
                    server.log.append(entry)
                    server.inflight += 1
                    server.max_inflight = max(server.max_inflight, server.inflight)
                try:
                    self._answer(payload, content, text, n, entry)
                finally:
                    with server.lock:
                        server.inflight -= 1

            def _answer(self, payload, content, text, n, entry):
                def times(tag: str) -> int:
                    m = re.search(rf"\[{tag}x(\d+)\]", text)
                    return int(m.group(1)) if m else 0

                auth = self.headers.get("authorization", "")
                if server.api_key is not None and auth != f"Bearer {server.api_key}":
                    entry["status"] = 401
                    return self._error(401, "Incorrect API key provided")
                if server.models is not None and payload.get("model") not in server.models:
                    entry["status"] = 404
                    return self._error(404, f"The model {payload.get('model')} does not exist")
                slow = re.search(r"\[slow:([\d.]+)\]", text)
                once = re.search(r"\[slow-once:([\d.]+)\]", text)
                if slow:
                    time.sleep(float(slow.group(1)))
                elif once and n == 1:
                    time.sleep(float(once.group(1)))
                if "[400]" in text:
                    entry["status"] = 400
                    return self._error(400, "This model's maximum context length is 8 tokens")
                if n <= times("429"):
                    entry["status"] = 429
                    return self._error(429, "Rate limit reached", headers=[("retry-after", "0")])
                if n <= times("500"):
                    entry["status"] = 500
                    return self._error(500, "The server had an error")
                if n <= times("badjson"):
                    entry["status"] = "badjson"
                    return self._send(200, b'{"id": "x", "choices": [{"message": {"content": "trunc')
                if n <= times("nochoices"):
                    entry["status"] = "nochoices"
                    return self._send(200, json.dumps({"id": "x", "object": "chat.completion"}).encode())
                reply = "" if n <= times("empty") else f'Sure! Here\'s the request: "I\'m looking for {text}"'
                body = {"id": f"chatcmpl-{n}", "object": "chat.completion", "created": int(time.time()),
                        "model": payload.get("model"),
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                                     "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
                self._send(200, json.dumps(body).encode())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def requests_for(self, phase: int | None = None) -> Counter:
        """How many times each input was requested (in ``phase``, or overall)."""
        with self.lock:
            return Counter(e["input"] for e in self.log if phase is None or e["phase"] == phase)

    def __enter__(self) -> "FakeChatServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
