"""Guards on what clients send, applied before and while a body is read:

- `BodyGuard` (ASGI middleware): per route, a body is capped before it is read (the announced `Content-Length`)
  and while it streams in (uploads at `max_upload_bytes`, everything else at `max_json_bytes`: 413); an admin
  route's key is checked before its body is read (401/403); a JSON body is parsed strictly (`strict_json`) before
  the route sees it (422).
- `strict_json`: JSON as the standard has it: no NaN or Infinity, no number out of range, no lone surrogate, no
  deep nesting (each of them answered 4xx instead of failing later as a 500).
- `validation_error`: the 422 answer to a request that fails validation, which never echoes what cannot be
  encoded as JSON and caps what it echoes.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from common.errors import StylerecError

MAX_DEPTH = 32  # nesting of a JSON body at most
MAX_INT = 2**63  # integers a JSON body may hold (SQLite's range)
MAX_ISSUES = 20  # validation problems listed in a 422 at most
MAX_TEXT = 200  # characters of any text echoed in a 422 at most
MULTIPART_SLACK = 64 * 1024  # an upload's form fields and boundaries, on top of the file's own limit


class BadJson(StylerecError, ValueError):
    """A client's JSON that the service does not accept, with the reason (422)."""

    http_status = 422


def _reject_constant(name: str) -> Any:
    raise BadJson(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadJson(f"number {text[:40]} is out of range")
    return value


def strict_json(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """Parse a client's JSON strictly; `BadJson` saying why it is refused (not JSON, NaN/Infinity, a number out
    of range, a lone surrogate in a string or key, nesting deeper than `max_depth`)."""
    try:
        value = json.loads(data, parse_constant=_reject_constant, parse_float=_finite)
    except BadJson:
        raise
    except RecursionError:
        raise BadJson(f"nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer of too many digits
        raise BadJson(f"not valid JSON: {safe_text(exc)}") from None
    _check(value, max_depth)
    return value


def _check(value: Any, max_depth: int) -> None:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, bool) or item is None or isinstance(item, float):
            continue
        elif isinstance(item, int):
            if not -MAX_INT <= item < MAX_INT:
                raise BadJson("integer out of range (64 bits at most)")
        elif depth >= max_depth:
            raise BadJson(f"nested deeper than {max_depth} levels")
        elif isinstance(item, dict):
            for key, child in item.items():
                _check_text(key)
                stack.append((child, depth + 1))
        else:
            stack.extend((child, depth + 1) for child in item)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadJson("a string holds a lone surrogate (not Unicode text)") from None


def safe_text(value: Any, limit: int = MAX_TEXT) -> str:
    """`value` as text that JSON can carry: at most `limit` characters, lone surrogates escaped."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _echo(value: Any) -> Any:
    """What of a client's input a 422 may show: short scalars only (never NaN, bytes or a whole structure)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -MAX_INT <= value < MAX_INT else safe_text(value, 40)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return safe_text(value, 100)
    return None


def issues(errors: list[dict]) -> list[dict]:
    """Validation errors as a 422 lists them: type, loc, msg and a short input; at most `MAX_ISSUES`."""
    out = []
    for error in errors[:MAX_ISSUES]:
        loc = [part if isinstance(part, int) else safe_text(part, 100) for part in error.get("loc", ())][:10]
        issue = {"type": safe_text(error.get("type", "invalid"), 60), "loc": loc, "msg": safe_text(error.get("msg"))}
        echoed = _echo(error.get("input"))
        if echoed is not None:
            issue["input"] = echoed
        out.append(issue)
    return out


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 listing what failed validation; what it echoes is capped and always valid JSON."""
    return JSONResponse({"detail": issues(list(exc.errors()))}, status_code=422)


class BodyTooLarge(StylerecError, HTTPException):
    """Raised from the body stream once it passes the route's limit, or by a route reading an upload over its
    limit (answered 413; the server closes the connection rather than read the rest). Also an `HTTPException`:
    FastAPI re-raises those from its form parsing (anything else there becomes a 400)."""

    http_status = 413
    detail: str = ""  # set per instance by HTTPException (shadows StylerecError's property)

    def __init__(self, limit: int, what: str = "request body") -> None:
        message = f"{what} larger than {limit} bytes"
        HTTPException.__init__(self, 413, message, headers={"Connection": "close"})
        self.args = (message,)

    def http_headers(self) -> dict[str, str]:
        return {"Connection": "close"}


class BodyGuard:
    """ASGI middleware that caps, authorises and checks request bodies before the routes read them (see the
    module's docstring). Requests without a body pass through untouched."""

    def __init__(self, app) -> None:
        self.app = app
        self._table: list | None = None  # from the app's OpenAPI schema, on the first request with a body

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        announced, chunked = headers.get(b"content-length"), b"transfer-encoding" in headers
        if announced is None and not chunked:
            await self.app(scope, receive, send)  # no body: nothing to guard
            return
        settings = scope["app"].state.service.settings
        upload, admin, takes_json = self._policy(scope)
        limit = settings.max_upload_bytes + MULTIPART_SLACK if upload else settings.max_json_bytes
        refusal = None
        if admin:
            refusal = _admin_refusal(headers.get(b"x-api-key"), settings)
        if refusal is None and announced is not None:
            try:
                size = int(announced)
            except ValueError:
                size = -1
            if size < 0:
                refusal = (400, "Content-Length is not a number of bytes")
            elif size > limit:
                refusal = (413, f"request body larger than {limit} bytes")
        if refusal is not None:
            await _answer(send, *refusal)  # the body is never read; the server closes the connection
            return
        receive = _capped(receive, limit)
        started = False

        async def send_started(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            if takes_json and _is_json(headers.get(b"content-type", b"")):
                body, receive = await _buffered(receive)
                if body:
                    try:
                        strict_json(body)
                    except BadJson as exc:
                        problem = {"type": "json_invalid", "loc": ["body"], "msg": safe_text(exc)}
                        await JSONResponse({"detail": [problem]}, status_code=422)(scope, receive, send)
                        return
            await self.app(scope, receive, send_started)
        except BodyTooLarge as exc:
            if started:
                raise
            await _answer(send, 413, exc.detail)

    def _policy(self, scope) -> tuple[bool, bool, bool]:
        """(takes an upload, needs the admin key, takes a JSON body) of the operation this request goes to, as
        the app's OpenAPI schema describes it (unknown routes: none of them)."""
        if self._table is None:
            self._table = route_policies(scope["app"].openapi())
        method, path = scope["method"].lower(), scope["path"]
        for pattern, policies in self._table:
            if method in policies and pattern.fullmatch(path):
                return policies[method]
        return False, False, False


def route_policies(schema: dict) -> list[tuple[re.Pattern, dict[str, tuple[bool, bool, bool]]]]:
    """Per path of an OpenAPI schema (as a pattern) and method: (upload, admin, JSON body)."""
    table = []
    for template, operations in schema.get("paths", {}).items():
        pattern = re.compile(re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)))
        policies = {}
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            content = operation.get("requestBody", {}).get("content", {})
            upload = "multipart/form-data" in content or "application/x-www-form-urlencoded" in content
            admin = bool(operation.get("security"))
            policies[method] = (upload, admin, "application/json" in content)
        table.append((pattern, policies))
    return table


def _admin_refusal(key: bytes | None, settings) -> tuple[int, str] | None:
    from recsys.service.deps import require_admin

    try:
        require_admin(None if key is None else key.decode("latin-1"), settings)
    except StylerecError as exc:  # AdminRefused: 401 or 403
        return exc.http_status, exc.detail
    return None


def _is_json(content_type: bytes) -> bool:
    kind = content_type.split(b";")[0].strip().lower()
    return kind == b"application/json" or (kind.startswith(b"application/") and kind.endswith(b"+json"))


def _capped(receive, limit: int):
    """`receive` that raises `BodyTooLarge` once more than `limit` body bytes came in."""
    seen = 0

    async def capped():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
        return message

    return capped


async def _buffered(receive):
    """The whole (capped) body, and a `receive` that hands it to the app again."""
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return b"", receive
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body, replayed = b"".join(chunks), False

    async def replay():
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


async def _answer(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status in (400, 413):
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
