"""A real HTTP receiver on 127.0.0.1 for webhook tests: records every request and answers from a
script (status, headers, delay per request; the last entry repeats) or from a function of the request
and those before it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (a receiver that times out)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0  # what the receiver answered


    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self, *answers: Answer, answer_for: Callable[[Received, list[Received]], Answer] | None = None) -> None:
        self.answers = list(answers) or [Answer()]
        self.answer_for = answer_for
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.release = threading.Event()  # set to cut every delay short (test teardown)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    n = len(receiver.requests)
                    received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    if receiver.answer_for is not None:
                        answer = receiver.answer_for(received, receiver.requests)
                    else:
                        answer = receiver.answers[min(n, len(receiver.answers) - 1)]
                    received.status = answer.status
                    receiver.requests.append(received)
                if answer.delay:
                    receiver.release.wait(answer.delay)
                try:
                    self.send_response(answer.status)
                    for k, v in answer.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the sender gave up (timeout) and closed the connection

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.json for r in self.requests]
