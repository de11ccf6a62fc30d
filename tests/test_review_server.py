"""The review server's locks: token, cookie, Host, Origin, CSRF, files by id
only, headers, loopback only; and its API over a real run."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from starlette.testclient import TestClient

from veil.review.draft import draft_path
from veil.review.guard import COOKIE
from veil.review.run import ReviewedRun
from veil.review.server import Review, Secrets, bind

from conftest import outward_allowed
from review_batch import run

PORT = 48123

Served = tuple[TestClient, Secrets, ReviewedRun]  # the client, its keys, the run it serves


@pytest.fixture(scope="module")
def outdir(tmp_path_factory: pytest.TempPathFactory, astronaut: npt.NDArray[np.uint8]) -> Path:
    from PIL import Image

    root = tmp_path_factory.mktemp("review")
    (root / "in").mkdir()
    Image.fromarray(astronaut).save(root / "in" / "one.png")
    (root / "in" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a photo")
    assert run("anonymize", root / "in", "-o", root / "out", "-q", "--no-verify") == 1
    (root / "out" / "not-in-report.png").write_bytes((root / "in" / "one.png").read_bytes())
    return root / "out"


@pytest.fixture
def server(outdir: Path) -> Iterator[Served]:
    keys = Secrets(port=PORT)
    batch = ReviewedRun(outdir)
    client = TestClient(Review(batch, keys).app(), base_url=f"http://127.0.0.1:{PORT}")
    yield client, keys, batch
    for item in batch.items.values():  # each test starts from the plan anonymize wrote
        if item.output is not None:
            draft_path(item.output).unlink(missing_ok=True)


def signed_in(client: TestClient, keys: Secrets) -> TestClient:
    response = client.get(f"/?token={keys.token}", follow_redirects=False)
    assert response.status_code == 303
    return client


def writes(keys: Secrets) -> dict[str, str]:
    return {"origin": f"http://127.0.0.1:{PORT}", "x-veil-csrf": keys.csrf}


def first_id(client: TestClient) -> str:
    """The id of the photo that was anonymized."""
    files = client.get("/api/files").json()["files"]
    return str(next(f["id"] for f in files if f["name"] == "one.png"))


def test_nothing_is_served_without_the_token(server: Served) -> None:
    client, _, batch = server
    item = next(iter(batch.items))
    for path in ("/", "/api/files", "/api/session", f"/api/files/{item}", f"/media/{item}/original"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert b"astronaut" not in response.content and response.headers["content-type"].startswith(
            "text/plain"
        )
    assert client.get("/?token=wrong").status_code == 403
    client.cookies.set(COOKIE, "guessed")
    assert client.get("/api/files").status_code == 403


def test_the_token_is_swapped_for_a_strict_cookie(server: Served) -> None:
    client, keys, _ = server
    response = client.get(f"/?token={keys.token}", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"  # the token leaves the URL
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert client.get("/").status_code == 200
    assert client.get("/api/files").json()["counts"]["total"] == 2


def test_other_hosts_are_refused_even_with_the_cookie(
    server: Served,
) -> None:
    client, keys, _ = server
    signed_in(client, keys)
    for host in ("evil.example", f"evil.example:{PORT}", f"127.0.0.1:{PORT + 1}", "127.0.0.1"):
        assert client.get("/api/files", headers={"host": host}).status_code == 403, host
    assert client.get("/api/files", headers={"host": f"localhost:{PORT}"}).status_code == 200


def test_changes_need_the_same_origin_and_the_csrf_token(
    server: Served,
) -> None:
    client, keys, batch = server
    signed_in(client, keys)
    item = first_id(client)
    body = {"op": "decide", "region": "f1", "decision": "drop"}
    path = f"/api/files/{item}/edit"
    good = writes(keys)
    refused = [
        {"x-veil-csrf": keys.csrf},  # no Origin
        {**good, "origin": "http://evil.example"},
        {**good, "origin": f"http://127.0.0.1:{PORT + 1}"},
        {"origin": good["origin"]},  # no CSRF token
        {**good, "x-veil-csrf": "wrong"},
    ]
    for headers in refused:
        assert client.post(path, json=body, headers=headers).status_code == 403, headers
    for action in ("undo", "redo", "apply", "approve"):
        assert client.post(f"/api/files/{item}/{action}", json={}).status_code == 403
    assert not batch.items[item].draft or not batch.items[item].draft.edited  # nothing changed
    response = client.post(path, json=body, headers=good)
    assert response.status_code == 200 and response.json()["unapplied"] is True


@pytest.mark.parametrize(
    "path",
    [
        "/static/..%2F..%2Fbatch.py",
        "/static/%2E%2E%2Fserver.py",
        "/static/../server.py",
        "/static/index.html/../../batch.py",
        "/media/..%2F..%2F..%2Fetc%2Fpasswd/original",
        "/media/%2Fetc%2Fpasswd/original",
        "/api/files/..%2F..%2Fetc%2Fpasswd",
        "/media/not-in-report.png/original",
        "/media/one.png/original",
        "/media/ITEM/..%2F..%2Fone.png",
        "/media/ITEM/original%2F..%2F..",
        "/media/ITEM/../../in/one.png",
        "/api/files/ITEM/frame/0",
        "/out/one.png",
        "/one.png",
        "/veil-report.json",
        "/static/",
    ],
)
def test_no_path_from_a_request_reaches_the_disk(server: Served, path: str) -> None:
    client, keys, _ = server
    signed_in(client, keys)
    item = first_id(client)
    response = client.get(path.replace("ITEM", item))
    assert response.status_code in (400, 404), (path, response.status_code)
    assert b"\x89PNG" not in response.content and b"root:" not in response.content
    assert b"def " not in response.content


def test_only_the_reports_files_are_listed(server: Served) -> None:
    client, keys, _ = server
    signed_in(client, keys)
    listing = client.get("/api/files").json()
    broken, one = listing["files"]  # a file that failed comes first; it has no output to show
    assert broken["state"] == "failed" and broken["name"].endswith("broken.jpg") and broken["error"]
    refused = client.get(f"/api/files/{broken['id']}")
    assert refused.status_code == 400 and "no output" in refused.json()["error"]
    assert client.get(f"/media/{broken['id']}/original").status_code == 400
    assert one["name"] == "one.png"
    item = one["id"]
    assert len(item) >= 12 and "." not in item and "/" not in item  # opaque, not a path
    for view in ("original", "preview", "output", "thumb"):
        response = client.get(f"/media/{item}/{view}")
        assert response.status_code == 200 and response.content[:2] == b"\xff\xd8", view


def test_every_response_forbids_framing_and_other_origins(
    server: Served,
) -> None:
    client, keys, _ = server
    for response in (client.get("/"), signed_in(client, keys).get("/"), client.get("/static/review.js")):
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        assert "server" not in response.headers


def test_the_page_loads_nothing_from_elsewhere() -> None:
    static = files("veil.review").joinpath("static")
    for name in ("index.html", "review.js", "review.css"):
        text = static.joinpath(name).read_text(encoding="utf-8")
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), name
        assert "@import" not in text and "url(" not in text
    page = static.joinpath("index.html").read_text(encoding="utf-8")
    for reference in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert reference.startswith("/static/"), reference


def test_it_listens_on_loopback_only() -> None:
    sock = bind()
    try:
        address, port = sock.getsockname()
        assert address == "127.0.0.1" and port > 0
        with outward_allowed("this machine's own address: nothing leaves it"):
            outward = _outward_address()
            if outward is not None:
                with pytest.raises(OSError), socket.create_connection((outward, port), timeout=2):
                    pass
    finally:
        sock.close()


def _outward_address() -> str | None:
    """This machine's address on its network, if it has one (no packet is sent)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 9))
        address = str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


def test_edits_are_saved_at_once_and_undone(server: Served, outdir: Path) -> None:
    client, keys, _ = server
    signed_in(client, keys)
    item = first_id(client)
    headers = writes(keys)
    draft = outdir / "one.png.plan.draft.json"
    plan_before = (outdir / "one.png.plan.json").read_bytes()
    drawn = client.post(
        f"/api/files/{item}/edit",
        json={"op": "draw", "box": [10, 10, 80, 60], "label": "badge"},
        headers=headers,
    ).json()
    assert [r["id"] for r in drawn["regions"] if r["kind"] == "manual"] == ["m1"]
    saved = json.loads(draft.read_text())  # written before the answer came
    assert any(r["id"] == "m1" and r["label"] == "badge" for r in saved["regions"])
    assert (outdir / "one.png.plan.json").read_bytes() == plan_before  # the output's plan is untouched
    keep = {"op": "decide", "region": "f1", "decision": "keep"}
    response = client.post(f"/api/files/{item}/edit", json=keep, headers=headers)
    assert response.status_code == 400 and "reason" in response.json()["error"]
    undone = client.post(f"/api/files/{item}/undo", json={}, headers=headers).json()
    assert not any(r["kind"] == "manual" for r in undone["regions"]) and undone["can_redo"]
    assert not draft.exists()  # back to the rendered plan: no draft
    redone = client.post(f"/api/files/{item}/redo", json={}, headers=headers).json()
    assert any(r["id"] == "m1" for r in redone["regions"])
    bad = [
        {"op": "move", "region": "nope", "box": [1, 1, 5, 5]},
        {"op": "draw", "box": "x"},
        {"op": "explode"},
    ]
    for body in bad:
        assert client.post(f"/api/files/{item}/edit", json=body, headers=headers).status_code == 400


def test_approval_waits_for_applied_changes(server: Served, outdir: Path) -> None:
    client, keys, _ = server
    signed_in(client, keys)
    item = first_id(client)
    headers = writes(keys)
    client.post(
        f"/api/files/{item}/edit", json={"op": "decide", "region": "f1", "decision": "drop"}, headers=headers
    )
    response = client.post(f"/api/files/{item}/approve", json={}, headers=headers)
    assert response.status_code == 400 and "apply" in response.json()["error"]
    report = json.loads((outdir / "veil-report.json").read_text())
    assert not any(file["review"] and file["review"]["approved"] for file in report["files"])


def test_the_address_opens_one_browser_only(server: Served) -> None:
    client, keys, _ = server
    signed_in(client, keys)
    assert client.get(f"/?token={keys.token}", follow_redirects=False).status_code == 303  # the same browser
    other = TestClient(client.app, base_url=f"http://127.0.0.1:{PORT}")
    response = other.get(f"/?token={keys.token}", follow_redirects=False)
    assert response.status_code == 403 and "opened already" in response.text
    assert "set-cookie" not in response.headers and other.get("/api/files").status_code == 403


def test_edits_are_refused_with_one_line_when_incomplete(server: Served, outdir: Path) -> None:
    client, keys, _ = server
    signed_in(client, keys)
    item = first_id(client)
    path, headers = f"/api/files/{item}/edit", writes(keys)
    refusals = {
        "region is missing": {"op": "remove"},
        "region is missing ": {"op": "decide", "decision": "drop"},
        "write the reason out": {"op": "decide", "region": "f1", "decision": "keep", "reason": "v"},
        "reason should be text": {"op": "decide", "region": "f1", "decision": "keep", "reason": 7},
        "frame should be a whole number": {"op": "split", "region": "f1"},
    }
    for message, body in refusals.items():
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == 400 and message.strip() in response.json()["error"], body
    assert not draft_path(outdir / "one.png").exists()  # nothing was changed
    drawn = client.post(path, json={"op": "draw", "box": [-40, 400, 60, 600]}, headers=headers).json()
    (region,) = [r for r in drawn["regions"] if r["kind"] == "manual"]
    assert region["box"] == [0.0, 400.0, 60.0, 512.0]  # dragged past the edge: stored inside the picture


def test_a_photo_needs_no_warning_before_apply(server: Served) -> None:
    client, keys, _ = server
    signed_in(client, keys)
    item = first_id(client)
    body = {
        "op": "decide",
        "region": "f1",
        "decision": "drop",
    }  # the astronaut's face: verification refuses it
    client.post(f"/api/files/{item}/edit", json=body, headers=writes(keys))
    assert client.get(f"/api/files/{item}/uncovered").json()["uncovered"] == []
