"""ASGI plumbing shared by the service's middlewares and the CSM page's auth."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def send_problem(
    send: Send, status: int, problem: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """A JSON client-error answer ``{"error", "problems", "status"}``, as every 4xx has."""
    body = json.dumps({"error": problem, "problems": [problem], "status": status}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_unauthorised(send: Send, problem: str) -> None:
    """A 401 JSON answer asking for a Bearer token."""
    await send_problem(send, 401, problem, [(b"www-authenticate", b"Bearer")])
