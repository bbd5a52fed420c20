"""A webhook receiver on loopback for the webhook tests: records every POST and answers as scripted."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chatops_bot.devstack.loopback import LoopbackServer
from chatops_bot.timer import REAL_TIME, Timer

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "docs" / "webhook-event.schema.json").read_text())
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks specification's example secret
OTHER_SECRET = "whsec_" + "c2Vjb25kLXNlY3JldC1mb3ItdGhlLXNlY29uZC1vbmU="


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # real seconds before answering


@dataclass(frozen=True)
class Call:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # on the test's timer
    status: int  # what the receiver answered

    def verified(self, secret: str = SECRET) -> dict[str, Any]:
        """The payload, once the `standardwebhooks` verifier accepted it and it matched the JSON Schema."""
        document: dict[str, Any] = Webhook(secret).verify(self.body, self.headers)
        jsonschema.validate(document, SCHEMA, format_checker=jsonschema.FormatChecker())
        return document

    @property
    def type(self) -> str:
        return str(json.loads(self.body)["type"])

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    """`script[path]`: the answers to give at that path, in order; then 200."""

    def __init__(self, timer: Timer = REAL_TIME) -> None:
        self.timer = timer
        self.calls: list[Call] = []
        self.script: dict[str, list[Answer]] = {}
        self.server = LoopbackServer(Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST"])]))
        self.base = ""

    async def start(self) -> None:
        self.base = f"http://127.0.0.1:{await self.server.start()}"

    async def stop(self) -> None:
        await self.server.stop()

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"

    def answer(self, path: str, *answers: Answer) -> None:
        self.script.setdefault(path, []).extend(answers)

    def at(self, path: str, *, delivered: bool = False) -> list[Call]:
        return [c for c in self.calls if c.path == path and (not delivered or 200 <= c.status < 300)]

    async def _handle(self, request: Request) -> Response:
        path = request.path_params["path"]
        queue = self.script.get(path) or []
        answer = queue.pop(0) if queue else Answer()
        body = await request.body()
        self.calls.append(Call(path, dict(request.headers), body, self.timer.monotonic(), answer.status))
        if answer.delay:
            await asyncio.sleep(answer.delay)
        return Response(answer.body, answer.status, headers=answer.headers)
