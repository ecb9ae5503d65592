"""The GitHub stand-in's request pipeline: who is calling (App JWT, installation token, personal token),
injected faults, App permissions and secondary rate limits (``github_limits``), rate-limit accounting
and headers, ETags and 304s, and GitHub-shaped JSON errors.

One aiohttp middleware; the routes behind it (``github_routes_*``) see only admitted requests.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.sandbox.github_limits import (
    NOT_ACCESSIBLE,
    SecondaryLimits,
    missing_permission,
    secondary_body,
)
from bot.sandbox.github_ops import CURRENT_ACTOR, CURRENT_IDENTITY, ApiError, json_response
from bot.sandbox.github_routes_app import RATE_LIMIT
from bot.sandbox.github_state import Account, GitHubState
from bot.sandbox.github_web_apps import WEB_ROUTE_PATTERN

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
APP_ROUTE = re.compile(r"^/app(/.*)?$|^/repos/[^/]+/[^/]+/installation$")
# The manifest flow's code exchange needs no credentials: the one-time code is the credential
# (docs.github.com/en/apps/sharing-github-apps/registering-a-github-app-from-a-manifest, step 3).
# The manifest form's page is github.com's, reached by a signed-in browser (``github_web_apps``).
ANONYMOUS_ROUTE = re.compile(r"^/app-manifests/[^/]+/conversions$|^/rate_limit$|" + WEB_ROUTE_PATTERN)
BAD_CREDENTIALS = "Bad credentials"
BAD_JWT = "A JSON web token could not be decoded"
NEEDS_AUTH = "Requires authentication"
NEEDS_INSTALLATION_TOKEN = NOT_ACCESSIBLE
# What GitHub says about caching its GET answers; clients revalidate with If-None-Match.
CACHE_CONTROL = "private, max-age=60, s-maxage=60"
VARY = "Accept, Authorization, Cookie, X-GitHub-OTP"
RATE_LIMITED = "API rate limit exceeded for {identity}."


@dataclass
class Fault:
    method: str
    route: str
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    remaining: int
    # The request is carried out, then answered with the fault: GitHub may end a request it has already
    # applied with a 502/504 or a timeout ("Troubleshooting the REST API", docs.github.com/en/rest/
    # using-the-rest-api/troubleshooting-the-rest-api#timeouts), so a client must look before it repeats.
    after_write: bool = False
    login: str | None = None  # only requests by this account (an after-write fault: known once admitted)


class Pipeline:
    """Counts every request by route key, answers injected faults, authenticates and accounts."""

    def __init__(
        self, state: GitHubState, public_key: rsa.RSAPublicKey, bot: Account, owner: Account
    ) -> None:
        self.state = state
        self._public_key = public_key
        self.bot = bot
        self.owner = owner
        self._write_lock = asyncio.Lock()
        self._clock = state.clock
        self.requests: collections.Counter[str] = collections.Counter()
        self.faults: list[Fault] = []
        self.rate_usage: dict[str, tuple[int, int]] = {}
        self.secondary = SecondaryLimits()

    def _route_key(self, request: web.Request) -> str:
        resource = request.match_info.route.resource
        return f"{request.method} {resource.canonical if resource is not None else request.path}"

    def _take_fault(self, request: web.Request, key: str, *, applied: bool = False) -> Fault | None:
        """The fault this request meets: before it is carried out, or (``applied``) after it was."""
        actor = CURRENT_ACTOR.get(None) if applied else None
        login = actor.login if actor is not None else None
        for fault in self.faults:
            if fault.after_write != applied or (fault.login is not None and fault.login != login):
                continue
            if fault.method == request.method and fault.route in (key.split(" ", 1)[1], request.path):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _authenticate(self, request: web.Request) -> None:
        """Set ``actor`` and ``identity`` on the request, or raise 401/403 as GitHub would."""
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        app_route = bool(APP_ROUTE.match(request.path))
        if scheme.lower() == "bearer" and credential.count(".") == 2:
            try:
                claims = jwt.decode(
                    credential,
                    self._public_key,
                    algorithms=["RS256"],
                    leeway=60,
                    options={"require": ["iat", "exp", "iss"]},
                )
            except jwt.PyJWTError as exc:
                raise ApiError(401, BAD_JWT) from exc
            if str(claims["iss"]) != str(self.state.site.app_id):
                raise ApiError(401, BAD_JWT)
            if not app_route:
                raise ApiError(403, NEEDS_INSTALLATION_TOKEN)
            self._identify(self.bot, f"app:{self.state.site.app_id}")
            return
        if scheme.lower() in ("token", "bearer") and credential:
            if app_route:
                raise ApiError(401, BAD_JWT)
            if self.state.installation_token_valid(credential):
                self._identify(self.bot, f"installation ID {self.state.site.installation_id}")
                return
            if credential in self.state.tokens:
                login = self.state.tokens[credential]
                self._identify(self.state.accounts[login], f"user {login}")
                return
            raise ApiError(401, BAD_CREDENTIALS)
        if ANONYMOUS_ROUTE.match(request.path):
            self._identify(self.owner, f"IP {request.remote}")
            return
        raise ApiError(401, NEEDS_AUTH)

    @staticmethod
    def _identify(account: Account, identity: str) -> None:
        CURRENT_ACTOR.set(account)
        CURRENT_IDENTITY.set(identity)

    def _rate_headers(self, identity: str, *, count: bool) -> dict[str, str]:
        now = int(self._clock())
        used, reset = self.rate_usage.get(identity, (0, now + 3600))
        if now >= reset:
            used, reset = 0, now + 3600
        if count:
            used += 1
        self.rate_usage[identity] = (used, reset)
        return {
            "X-RateLimit-Limit": str(RATE_LIMIT),
            "X-RateLimit-Remaining": str(max(0, RATE_LIMIT - used)),
            "X-RateLimit-Reset": str(reset),
            "X-RateLimit-Used": str(used),
            "X-RateLimit-Resource": "core",
            "X-GitHub-Api-Version-Selected": "2022-11-28",
            "X-GitHub-Request-Id": uuid.uuid4().hex[:20],
        }

    def _admit(self, request: web.Request) -> str:
        """Authenticate, check the repository and the rate limit; returns the caller's rate-limit identity."""
        self._authenticate(request)
        identity = CURRENT_IDENTITY.get()
        info = request.match_info
        if "owner" in info and (info["owner"], info["repo"]) != (self.state.site.owner, self.state.site.repo):
            raise ApiError(404, "Not Found")
        used, _ = self.rate_usage.get(identity, (0, 0))
        if used >= RATE_LIMIT and request.path != "/rate_limit":
            raise ApiError(403, RATE_LIMITED.format(identity=identity))
        if identity.startswith("installation "):
            lacking = missing_permission(
                request.method, self._route_key(request).split(" ", 1)[1], self._granted()
            )
            if lacking is not None:
                log.debug("GitHub stand-in: the App lacks %s for %s", lacking, request.path)
                raise ApiError(403, NOT_ACCESSIBLE)
        return identity

    def _granted(self) -> dict[str, str]:
        return self.state.site.app_permissions

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        key = self._route_key(request)
        self.requests[key] += 1
        identity = "anonymous"
        fault = self._take_fault(request, key)
        if fault is not None:
            injected = json_response(fault.body, fault.status)
            injected.headers.update(self._rate_headers(identity, count=False) | fault.headers)
            return injected
        response: web.StreamResponse
        admitted = False
        try:
            identity = self._admit(request)
            refused = self.secondary.admit(identity, request.method, self._clock())
            if refused is not None:
                # No Retry-After, x-ratelimit-remaining above 0: only the message says what happened.
                response = json_response(secondary_body(content=True), refused)
            elif request.method == "GET":
                response = await handler(request)
            else:
                admitted = True
                # GitHub applies one repository's writes atomically (a second PR for the same head is
                # refused); the stand-in's handlers check then write across awaits, so writes queue here.
                async with self._write_lock:
                    response = await handler(request)
        except ApiError as exc:
            response = exc.response()
        except web.HTTPException as exc:
            # GitHub answers unknown routes and methods with a JSON 404.
            response = ApiError(404 if exc.status in (404, 405) else exc.status, exc.reason).response()
        except Exception:
            log.exception("GitHub stand-in failed on %s", key)
            response = ApiError(500, "Server Error").response()
        finally:
            if admitted:
                self.secondary.done(identity, request.method)
        conditional = False
        if request.method == "GET" and response.status == 200 and isinstance(response, web.Response):
            etag = 'W/"' + hashlib.sha256(response.body or b"").hexdigest()[:40] + '"'  # type: ignore[arg-type]
            response.headers["ETag"] = etag
            response.headers["Cache-Control"] = CACHE_CONTROL
            response.headers["Vary"] = VARY
            wanted = {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}
            if etag in wanted or etag.removeprefix("W/") in wanted:
                conditional = True
                response = web.Response(
                    status=304, headers={"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": VARY}
                )
        counted = not conditional and request.path != "/rate_limit"
        response.headers.update(self._rate_headers(identity, count=counted))
        fault = self._take_fault(request, key, applied=True) if 200 <= response.status < 300 else None
        if fault is not None:  # carried out, then answered as a failure
            response = json_response(fault.body, fault.status)
            response.headers.update(self._rate_headers(identity, count=False) | fault.headers)
        return response
