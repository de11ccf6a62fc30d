"""The locks of the review page's server, before any route runs: an ASGI
middleware in the spirit of Jupyter's server.

- The URL `veil review` prints carries a random token, swapped once for a
  cookie (HttpOnly, SameSite=Strict); the token opens nothing after that,
  and any request without the cookie is refused.
- A Host header that is not the address served is refused (DNS
  rebinding); so is any request that changes something without a
  matching Origin and the CSRF token the page was given.
- Every response, refusals included, carries a Content-Security-Policy
  that allows only the page itself, and forbids framing and caching.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from starlette.responses import PlainTextResponse, RedirectResponse, Response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "veil_review"
CSRF_HEADER = "x-veil-csrf"
HOST = "127.0.0.1"
_SAFE_METHODS = {"GET", "HEAD"}
_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' blob:; script-src 'self'; style-src 'self'; "
        b"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


@dataclass
class Secrets:
    """The URL's token, the session cookie it is swapped for, and the CSRF token."""

    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    session: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    port: int = 0
    used: bool = False  # the token has been swapped for the cookie: it opens nothing more

    @property
    def hosts(self) -> set[str]:
        return {f"{HOST}:{self.port}", f"localhost:{self.port}"}

    @property
    def origins(self) -> set[str]:
        return {f"http://{host}" for host in self.hosts}

    def url(self) -> str:
        return f"http://{HOST}:{self.port}/?token={self.token}"


class Guard:
    """ASGI middleware: every check above, before any route runs, and the
    security headers on every response."""

    def __init__(self, app: ASGIApp, keys: Secrets) -> None:
        self.app, self.keys = app, keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        refusal = self.refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def refusal(self, scope: Scope) -> Response | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if headers.get("host") not in self.keys.hosts:
            return PlainTextResponse("refused: this server answers only at its own address", 403)
        cookie = SimpleCookie()
        cookie.load(headers.get("cookie", ""))
        given = cookie[COOKIE].value if COOKIE in cookie else ""
        signed_in = hmac.compare_digest(given, self.keys.session)
        if scope["path"] == "/" and scope["method"] == "GET":
            token = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
            if token:
                if not hmac.compare_digest(token, self.keys.token):
                    return PlainTextResponse("refused: wrong token", 403)
                response = RedirectResponse("/", status_code=303)
                if signed_in:  # the same browser opening the address again
                    return response
                if self.keys.used:  # the token is swapped for a cookie once, for one browser
                    return PlainTextResponse(
                        "refused: this address was opened already; start veil review again for a new one", 403
                    )
                self.keys.used = True
                response.set_cookie(COOKIE, self.keys.session, httponly=True, samesite="strict", path="/")
                return response
        if not signed_in:
            return PlainTextResponse("refused: open the address veil review printed", 403)
        if scope["method"] not in _SAFE_METHODS:
            if headers.get("origin") not in self.keys.origins:
                return PlainTextResponse("refused: cross-origin request", 403)
            if not hmac.compare_digest(headers.get(CSRF_HEADER, ""), self.keys.csrf):
                return PlainTextResponse("refused: missing or wrong CSRF token", 403)
        return None
