"""A clip under review, without a browser: a face followed both ways from
where a person (or a finding) placed it, and stopped where it is lost; the
gallery's picture of each track, cut from the original at its surest frame
and served only by an id the plan holds; the clip's frame times."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import skimage.data
from PIL import Image
from starlette.testclient import TestClient

from veil import Decision, Kind, Region
from veil.media.video import FrameReader
from veil.plan.model import FrameBox
from veil.review.draft import draft_path
from veil.review.follow import followed
from veil.review.people import crop_around, surest_frame
from veil.review.run import ReviewedRun
from veil.review.server import Review, Secrets

from review_batch import run
from videos import Clip, astronaut_frame, make_clip

PORT = 48124
FRAMES = 16


def frames_of(
    astronaut: npt.NDArray[np.uint8], count: int
) -> tuple[list[npt.NDArray[np.uint8]], list[tuple[int, ...]]]:
    made = [astronaut_frame(astronaut, index) for index in range(count)]
    return [frame for frame, _ in made], [face for _, face in made]


def near(box: tuple[float, ...], face: tuple[int, ...], pixels: float = 6) -> bool:
    return bool(np.abs(np.array(box) - np.array(face)).max() <= pixels)


def test_a_followed_face_stays_on_it_and_stops_where_it_is_gone(astronaut: npt.NDArray[np.uint8]) -> None:
    frames, faces = frames_of(astronaut, 30)
    path = followed(lambda f: frames[f], 30, 10, tuple(map(float, faces[10])))  # type: ignore[arg-type]
    assert [f for f, _ in path] == list(range(30))
    assert all(near(box, faces[f], 4) for f, box in path)  # no drift over 30 frames
    gone = [f if i < 20 else np.full_like(f, 90) for i, f in enumerate(frames)]  # the person leaves at 20
    path = followed(lambda f: gone[f], 30, 10, tuple(map(float, faces[10])))  # type: ignore[arg-type]
    assert [f for f, _ in path] == list(range(20))  # MIL alone would go on, on the empty wall
    other = cv2.resize(skimage.data.coffee(), frames[0].shape[1::-1])
    cut = [f if i >= 6 else other for i, f in enumerate(frames)]  # a cut to another scene before frame 6
    path = followed(lambda f: cut[f], 30, 10, tuple(map(float, faces[10])))  # type: ignore[arg-type]
    assert [f for f, _ in path] == list(range(6, 30))


def test_the_surest_frame_is_the_best_scored_or_where_a_person_placed_it() -> None:
    track = tuple(FrameBox(f, (1.0, 1.0, 9.0, 9.0), s) for f, s in ((3, 0.5), (4, 0.9), (5, 0.0), (6, 0.7)))
    assert surest_frame(Region("f1", Kind.FACE, Decision.MASK, track=track)) == 4
    drawn = tuple(FrameBox(f, (1.0, 1.0, 9.0, 9.0)) for f in range(3, 9))
    assert surest_frame(Region("m1", Kind.MANUAL, Decision.MASK, track=drawn, set_frames=(6,))) == 6
    assert surest_frame(Region("m2", Kind.MANUAL, Decision.MASK, keyframes=drawn[2:4])) == 5
    assert surest_frame(Region("f2", Kind.FACE, Decision.MASK, box=(1.0, 1.0, 9.0, 9.0))) is None
    assert crop_around((100.0, 100.0, 150.0, 160.0), 480, 320) == (59, 64, 191, 196)
    assert crop_around((0.0, 250.0, 50.0, 320.0), 480, 320) == (0, 166, 154, 320)  # moved inside


@pytest.fixture(scope="module")
def clip_run(tmp_path_factory: pytest.TempPathFactory, astronaut: npt.NDArray[np.uint8]) -> tuple[Path, Clip]:
    root = tmp_path_factory.mktemp("clip")
    (root / "in").mkdir()
    clip = make_clip(root / "in" / "walk.mp4", astronaut, frames=FRAMES, audio=False)
    assert run("anonymize", root / "in", "-o", root / "out", "-q", "--no-verify") == 0
    return root / "out", clip


@pytest.fixture
def client(clip_run: tuple[Path, Clip]) -> Iterator[tuple[TestClient, Secrets, str]]:
    outdir, _ = clip_run
    keys = Secrets(port=PORT)
    batch = ReviewedRun(outdir)
    client = TestClient(Review(batch, keys).app(), base_url=f"http://127.0.0.1:{PORT}")
    assert client.get(f"/?token={keys.token}", follow_redirects=False).status_code == 303
    (item,) = batch.items
    yield client, keys, item
    draft_path(outdir / "walk.mp4").unlink(missing_ok=True)


def writes(keys: Secrets) -> dict[str, str]:
    return {"origin": f"http://127.0.0.1:{PORT}", "x-veil-csrf": keys.csrf}


def test_mask_it_follows_the_face_both_ways(
    client: tuple[TestClient, Secrets, str], clip_run: tuple[Path, Clip]
) -> None:
    http, keys, item = client
    _, clip = clip_run
    start = 9
    body = {"op": "draw", "mode": "follow", "shape": "ellipse", "label": "face", "frame": start}
    response = http.post(
        f"/api/files/{item}/edit", json=body | {"box": list(clip.faces[start])}, headers=writes(keys)
    )
    assert response.status_code == 200, response.text
    (region,) = [r for r in response.json()["regions"] if r["kind"] == "manual"]
    assert (region["first"], region["last"], region["count"]) == (0, FRAMES - 1, FRAMES)
    assert region["surest"] == start and region["set_frames"] == [start]  # where it was placed
    assert region["shape"] == "ellipse" and region["label"] == "face" and region["decision"] == "mask"
    for frame in range(FRAMES):
        boxes = http.get(f"/api/files/{item}/frame/{frame}").json()["regions"]
        (mine,) = [r for r in boxes if r["id"] == region["id"]]
        assert near(mine["box"], clip.faces[frame]), (frame, mine["box"], clip.faces[frame])


def test_a_tracks_picture_is_the_original_around_it_at_its_surest_frame(
    client: tuple[TestClient, Secrets, str], clip_run: tuple[Path, Clip]
) -> None:
    http, _, item = client
    outdir, clip = clip_run
    regions = http.get(f"/api/files/{item}").json()["regions"]
    face = max(regions, key=lambda r: r["score"] or 0)  # veil's surest track: the astronaut
    response = http.get(f"/media/{item}/region/{face['id']}")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    picture = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"), dtype=np.int16)
    assert max(picture.shape[:2]) <= 160
    surest = face["surest"]
    box = next(
        r["box"]
        for r in http.get(f"/api/files/{item}/frame/{surest}").json()["regions"]
        if r["id"] == face["id"]
    )
    x1, y1, x2, y2 = crop_around(tuple(box), 480, 320)
    with FrameReader(clip_run[1].path) as reader:
        original = reader.frame(surest)[y1:y2, x1:x2]
    expected = cv2.resize(original, picture.shape[1::-1], interpolation=cv2.INTER_AREA).astype(np.int16)
    assert np.abs(picture - expected).mean() < 6  # the original, unmasked (JPEG is lossy)
    with FrameReader(outdir / "walk.mp4") as reader:
        output = reader.frame(surest)[y1:y2, x1:x2]
    masked = cv2.resize(output, picture.shape[1::-1], interpolation=cv2.INTER_AREA).astype(np.int16)
    assert np.abs(picture - masked).mean() > 15  # not the output, where the face is masked
    assert near(box, clip.faces[surest], 12)


@pytest.mark.parametrize("region", ["nope", "f1%2F..%2F..", "..", "m1"])
def test_only_a_region_of_the_plan_has_a_picture(
    client: tuple[TestClient, Secrets, str], region: str
) -> None:
    http, _, item = client
    response = http.get(f"/media/{item}/region/{region}")
    assert response.status_code in (400, 404)
    assert response.content[:2] != b"\xff\xd8"
    if response.status_code == 400:
        error = response.json()["error"]
        assert "\n" not in error and "Traceback" not in error


def test_the_gallery_and_the_clock_need_the_cookie(client: tuple[TestClient, Secrets, str]) -> None:
    http, _, item = client
    seconds = http.get(f"/api/files/{item}/seconds").json()["seconds"]
    assert seconds == pytest.approx([f / 25 for f in range(FRAMES)])  # the clip's own clock
    assert http.get(f"/media/{item}/region/f1").status_code == 200
    http.cookies.clear()
    for path in (f"/media/{item}/region/f1", f"/api/files/{item}/seconds", "/static/video.js"):
        response = http.get(path)
        assert response.status_code == 403 and response.content[:2] != b"\xff\xd8", path


def test_the_video_script_loads_nothing_from_elsewhere() -> None:
    static = files("veil.review").joinpath("static")
    text = static.joinpath("video.js").read_text(encoding="utf-8")
    assert not re.search(r"https?://", text) and "import(" not in text and "eval(" not in text
    page = static.joinpath("index.html").read_text(encoding="utf-8")
    assert page.index("/static/video.js") > page.index("/static/review.js")  # it uses review.js's globals
