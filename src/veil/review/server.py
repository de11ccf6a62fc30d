"""The review page's server: a thin layer of HTTP over `ReviewedRun`, `Pictures`
and `veil.plan.edit`, locked down like a Jupyter server.

- It listens on 127.0.0.1 only, on a port the system picks.
- Token, cookie, Host, Origin and CSRF checks, and the security headers,
  are `veil.review.guard`'s, before any route runs.
- Files are served by the opaque id of a file in the run's report, never by
  a path taken from a request. No listings; nothing from elsewhere: the
  page's Content-Security-Policy allows only itself.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib.resources import files
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from veil.errors import NotFoundError, RejectedError, ReviewError, VeilError
from veil.plan import edit
from veil.plan.model import Box, Decision, Plan, Shape
from veil.review import views
from veil.review.follow import followed, tracked
from veil.review.guard import HOST, ASGIApp, Guard, Secrets
from veil.review.pictures import Pictures, View
from veil.review.run import Item, ReviewedRun
from veil.review.uncover import uncovered

_STATIC = {
    "review.js": "text/javascript; charset=utf-8",
    "bulk.js": "text/javascript; charset=utf-8",
    "review.css": "text/css; charset=utf-8",
    "video.js": "text/javascript; charset=utf-8",
}


class Applying(StrEnum):
    """Where an Apply stands (the page reads these values)."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # not rendered
    REJECTED = "rejected"  # rendered, failed verification, not swapped in


class Phase(StrEnum):
    RENDERING = "rendering"
    VERIFYING = "verifying"


@dataclass
class _Apply:
    """An Apply in progress or done."""

    state: Applying = Applying.RUNNING
    phase: Phase = Phase.RENDERING
    done: int = 0
    total: int = 0
    error: str | None = None


class Review:
    """The routes, over one batch."""

    def __init__(self, batch: ReviewedRun, keys: Secrets) -> None:
        self.batch, self.keys = batch, keys
        self.pictures = Pictures(batch)
        self.jobs: dict[str, _Apply] = {}
        self._checked: dict[str, tuple[int, list[dict[str, Any]]]] = {}  # item: draft version, uncovered
        self._jobs_lock = threading.Lock()

    def app(self) -> ASGIApp:
        routes = [
            Route("/", self.page),
            Route("/static/{name}", self.static),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
            Route("/api/session", self.session),
            Route("/api/files", self.listing),
            Route("/api/files/{item}", self.details),
            Route("/api/files/{item}/frame/{frame:int}", self.frame_regions),
            Route("/api/files/{item}/seconds", self.seconds),
            Route("/api/files/{item}/edit", self.edit, methods=["POST"]),
            Route("/api/files/{item}/undo", self.undo, methods=["POST"]),
            Route("/api/files/{item}/redo", self.redo, methods=["POST"]),
            Route("/api/files/{item}/uncovered", self.uncovered),
            Route("/api/files/{item}/apply", self.apply, methods=["POST"]),
            Route("/api/files/{item}/job", self.job),
            Route("/api/files/{item}/approve", self.approve, methods=["POST"]),
            Route("/api/files/{item}/looked", self.looked, methods=["POST"]),
            Route("/media/{item}/thumb", self.thumb),
            Route("/media/{item}/region/{region}", self.person),
            Route("/media/{item}/{view}", self.picture),
            Route("/media/{item}/{view}/{frame:int}", self.picture),
        ]
        return Guard(
            Starlette(
                routes=routes,
                exception_handlers={VeilError: _refused, ValueError: _refused, KeyError: _refused},
            ),
            self.keys,
        )

    def item(self, request: Request) -> Item:
        item = self.batch.items.get(request.path_params["item"])
        if item is None:
            raise NotFoundError()
        return item

    def page(self, request: Request) -> Response:
        html = files("veil.review").joinpath("static/index.html").read_text(encoding="utf-8")
        return Response(html, media_type="text/html; charset=utf-8")

    def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC:  # a fixed list: no path from the request reaches the disk
            return PlainTextResponse("not found", 404)
        text = files("veil.review").joinpath(f"static/{name}").read_text(encoding="utf-8")
        return Response(text, media_type=_STATIC[name])

    def session(self, request: Request) -> Response:
        return JSONResponse({"csrf": self.keys.csrf})

    def listing(self, request: Request) -> Response:
        return JSONResponse(views.batch_view(self.batch))

    def details(self, request: Request) -> Response:
        item = self.item(request)
        return self._file(item)

    def frame_regions(self, request: Request) -> Response:
        item = self.item(request)
        plan = self.batch.draft(item).plan
        frame = request.path_params["frame"]
        if not plan.is_video or not 0 <= frame < (plan.source.frames or 0):
            raise ReviewError(f"no frame {frame} in {item.name}")
        return JSONResponse(views.frame_view(plan, frame))

    def _idle(self, item: Item) -> None:
        """Refuse to change a file while it is being rendered from its draft."""
        job = self.jobs.get(item.id)
        if job is not None and job.state is Applying.RUNNING:
            raise ReviewError(f"{item.name} is being rendered: wait for it to finish")

    async def edit(self, request: Request) -> Response:
        item = self.item(request)
        self._idle(item)
        body = await _json(request)
        change = self._edit(item, body)
        decided = _regions(body) if body.get("op") == "decide" else []
        return await run_in_threadpool(lambda: self._changed(item, change, decided))

    def _changed(self, item: Item, change: Callable[[Plan], Plan], decided: Sequence[str] = ()) -> Response:
        with item.lock:
            self.batch.change(item, change)
        if decided:  # a region decided has been looked at
            self.batch.look(item, decided)
        return self._file(item)

    async def looked(self, request: Request) -> Response:
        """A person has looked at these regions (the page says so when one is selected)."""
        item = self.item(request)
        ids = _regions(await _json(request))
        known = {r.id for r in self.batch.draft(item).plan.regions}
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise ReviewError(f"no region {unknown[0]!r} in this plan")
        looked = await run_in_threadpool(lambda: self.batch.look(item, ids))
        return JSONResponse({"looked": sorted(looked), "reviewed": views.reviewed(self.batch, item)})

    def _edit(self, item: Item, body: dict[str, Any]) -> Callable[[Plan], Plan]:
        """The change a request asks for, checked before it is made."""
        op = body.get("op")
        frame = body.get("frame")
        if op == "decide":
            decision = Decision(_text(body, "decision"))
            reason = body.get("reason") if decision is Decision.KEEP else None
            if reason is not None and not isinstance(reason, str):
                raise ReviewError("reason should be text")
            if "regions" in body:  # many at once: one change, one undo step
                ids = _regions(body)
                if decision is Decision.KEEP and len(ids) > 1:
                    raise ReviewError("keep faces visible one at a time, each with its own reason")
                return lambda plan: plan.decide_many(ids, decision, reason)
            region = _text(body, "region")
            return lambda plan: plan.decide(region, decision, reason)
        if op == "move":
            region, box = _text(body, "region"), _box(body)
            return lambda plan: edit.moved(plan, region, box, frame)
        if op == "span":
            region, first, last = _text(body, "region"), _integer(body, "first"), _integer(body, "last")
            return lambda plan: edit.spanned(plan, region, first, last)
        if op == "split":
            region, at = _text(body, "region"), _integer(body, "frame")
            return lambda plan: edit.split(plan, region, at)
        if op == "remove":
            region = _text(body, "region")
            return lambda plan: edit.removed(plan, region)
        if op == "draw":
            shape = Shape(body.get("shape", Shape.BOX.value))
            box = edit.inside_picture(self.batch.draft(item).plan, _box(body))
            label = body.get("label") or "other"
            if label not in edit.LABELS:
                raise ReviewError(f"label should be one of {', '.join(edit.LABELS)}")
            mode = body.get("mode", "fixed")
            if not item.video:
                return lambda plan: plan.drawn(box=box, label=label, shape=shape)
            frame = _integer(body, "frame")
            if mode == "fixed":
                return lambda plan: plan.drawn(keyframes=edit.whole_clip(plan, box), label=label, shape=shape)
            if mode == "keyframes":
                return lambda plan: plan.drawn(keyframes=[(frame, box)], label=label, shape=shape)
            if mode == "follow":
                return lambda plan: self._followed(item, plan, frame, box, label, shape)
            raise ReviewError("mode should be fixed, keyframes or follow")
        raise ReviewError(f"unknown edit {op!r}")

    def _followed(self, item: Item, plan: Plan, frame: int, box: Box, label: str, shape: Shape) -> Plan:
        frames = plan.source.frames or 0
        path = followed(lambda f: self.pictures.pixels(item, View.ORIGINAL, f), frames, frame, box)
        return tracked(plan, path, frame, label, shape)

    async def undo(self, request: Request) -> Response:
        item = self.item(request)
        return await run_in_threadpool(lambda: self._history(item, undo=True))

    async def redo(self, request: Request) -> Response:
        item = self.item(request)
        return await run_in_threadpool(lambda: self._history(item, undo=False))

    def _history(self, item: Item, undo: bool) -> Response:
        self._idle(item)
        with item.lock:
            draft = self.batch.draft(item)
            draft.undo() if undo else draft.redo()
        return self._file(item)

    def apply(self, request: Request) -> Response:
        item = self.item(request)
        self.batch.draft(item)  # refuse at once what cannot be reviewed
        with self._jobs_lock:
            self._idle(item)
            job = self.jobs[item.id] = _Apply()

        def rendering(done: int, total: int) -> None:
            job.done, job.total = done, total

        def verifying(done: int, total: int) -> None:
            job.phase, job.done, job.total = Phase.VERIFYING, done, total

        def run() -> None:
            try:
                with item.lock:
                    self.batch.apply(item, rendering, verifying)
                job.state = Applying.DONE
            except RejectedError as e:
                job.state, job.error = Applying.REJECTED, str(e)
            except VeilError as e:
                job.state, job.error = Applying.FAILED, str(e)
            except Exception as e:  # the page must learn of it; the old output stays
                job.state, job.error = Applying.FAILED, f"internal error: {e}".splitlines()[0]

        threading.Thread(target=run, name=f"apply-{item.id}", daemon=True).start()
        return JSONResponse(self._job(item), status_code=202)

    def uncovered(self, request: Request) -> Response:
        """The person's drops that would leave a face bare: asked before Apply."""
        item = self.item(request)
        return JSONResponse(self._uncovered(item))

    def _uncovered(self, item: Item) -> dict[str, Any]:
        with item.lock:
            draft = self.batch.draft(item)
            plan, base, version = draft.plan, draft.base, draft.version
        cached = self._checked.get(item.id)
        if cached is None or cached[0] != version:
            found = uncovered(
                plan,
                base,
                lambda frame: self.pictures.pixels(item, View.ORIGINAL, frame),
                self.batch.second_look(),
            )
            cached = self._checked[item.id] = (version, [u.to_dict() for u in found])
        return {"version": version, "uncovered": cached[1]}

    def job(self, request: Request) -> Response:
        return JSONResponse(self._job(self.item(request)))

    def _file(self, item: Item) -> Response:
        """One file as the page shows it, with its Apply in progress, if any."""
        return JSONResponse(views.file_view(self.batch, item) | {"job": self._job(item)})

    def _job(self, item: Item) -> dict[str, Any] | None:
        job = self.jobs.get(item.id)
        if job is None:
            return None
        return {
            "state": job.state,
            "phase": job.phase,
            "done": job.done,
            "total": job.total,
            "error": job.error,
        }

    def approve(self, request: Request) -> Response:
        item = self.item(request)
        self._idle(item)
        with item.lock:
            self.batch.approve(item)
        return self._file(item)

    def picture(self, request: Request) -> Response:
        item = self.item(request)
        try:
            view = View(request.path_params["view"])
        except ValueError:
            return PlainTextResponse("not found", 404)
        frame = request.path_params.get("frame")
        return Response(self.pictures.jpeg(item, view, frame), media_type="image/jpeg")

    def person(self, request: Request) -> Response:
        """A track at its surest frame, for the gallery; the region is looked
        up in the draft by its id, and only a region of the plan is shown."""
        item = self.item(request)
        jpeg = self.pictures.person(item, request.path_params["region"])
        return Response(jpeg, media_type="image/jpeg")

    def seconds(self, request: Request) -> Response:
        return JSONResponse({"seconds": self.pictures.seconds(self.item(request))})

    def thumb(self, request: Request) -> Response:
        return Response(self.pictures.thumbnail(self.item(request)), media_type="image/jpeg")


def _refused(request: Request, error: Exception) -> Response:
    status = 404 if isinstance(error, NotFoundError) else 400
    if isinstance(error, NotFoundError):
        message = "not found"
    elif isinstance(error, KeyError):
        message = f"no region {error.args[0]!r} in this plan" if error.args else "not found"
    else:
        message = (str(error) or type(error).__name__).splitlines()[0]
    return JSONResponse({"error": message}, status_code=status)


async def _json(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise ReviewError("send JSON")
    try:
        body = await request.json()
    except ValueError:
        raise ReviewError("the request is not JSON") from None
    if not isinstance(body, dict):
        raise ReviewError("the request should be a JSON object")
    return body


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ReviewError(f"{key} is missing")
    return value


def _regions(body: dict[str, Any]) -> list[str]:
    """The region ids a request names: `regions`, a list, or one `region`."""
    if "regions" not in body:
        return [_text(body, "region")]
    value = body["regions"]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ReviewError("regions should be a list of region ids")
    return value


def _integer(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ReviewError(f"{key} should be a whole number")
    return value


def _box(body: dict[str, Any]) -> Box:
    value = body.get("box")
    if not isinstance(value, list) or len(value) != 4:
        raise ReviewError("box should be [x1, y1, x2, y2]")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise ReviewError("box should be four numbers")
    x1, y1, x2, y2 = (float(v) for v in value)
    return x1, y1, x2, y2


def bind() -> socket.socket:
    """A listening socket on the loopback address, on a free port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def serve(batch: ReviewedRun, on_ready: Callable[[str], None], keys: Secrets | None = None) -> None:
    """Serve the review of `batch` until interrupted; `on_ready` gets the URL."""
    keys = keys or Secrets()
    server, sock = make_server(batch, keys)
    on_ready(keys.url())
    server.run(sockets=[sock])


def make_server(batch: ReviewedRun, keys: Secrets) -> tuple[uvicorn.Server, socket.socket]:
    """A server for `batch` and its socket, bound and listening; `keys.port` is set."""
    sock = bind()
    keys.port = sock.getsockname()[1]
    app = Review(batch, keys).app()
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        server_header=False,
        date_header=False,
        lifespan="off",
        ws="none",
    )
    return uvicorn.Server(config), sock
