"""Text that names or locates someone is masked; signs are left readable.

The pictures are drawn here: a plate (a white board, a dark frame, a
registration in a TrueType font Pillow ships), a sign of three lines held
above the astronaut, and the astronaut's own name badge."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageDraw, ImageFont

import veil
from veil import (
    AnonymizeOptions,
    Check,
    Choice,
    Decision,
    Detections,
    Kind,
    Reason,
    Shape,
    Verifier,
    VerifyOptions,
    load_plan,
    verify_text,
)
from veil.changes import Changes
from veil.detection.choose import off_signs
from veil.detection.models import TEXT_DETECTOR, model_path, verified_model_bytes
from veil.detection.second_look import Look
from veil.options import TextOptions
from veil.plan.files import plan_path
from veil.text import TextLabel, TextLine, read_text, text_detector

FILL = np.array(veil.MaskOptions().color)
# The name line of the astronaut's badge, upright pixels of scikit-image's astronaut.
BADGE_NAME = (287, 366, 318, 375)


def draw_plate(
    image: Image.Image, x: int, y: int, registration: str = "KX 4729"
) -> tuple[int, int, int, int]:
    """A plate drawn at (x, y); returns the box of its letters."""
    font = ImageFont.load_default(size=30)
    draw = ImageDraw.Draw(image)
    draw.rectangle((x, y, x + 180, y + 50), fill=(245, 245, 245), outline=(20, 20, 20), width=3)
    draw.text((x + 15, y + 5), registration, font=font, fill=(10, 10, 10))
    left, top, right, bottom = draw.textbbox((x + 15, y + 5), registration, font=font)
    return int(left), int(top), int(right), int(bottom)


def unchanged(before: Path, after: Path, box: tuple[int, int, int, int]) -> bool:
    x1, y1, x2, y2 = box
    with Image.open(before) as a, Image.open(after) as b:
        first = np.asarray(a.convert("RGB"))[y1:y2, x1:x2].astype(int)
        second = np.asarray(b.convert("RGB"))[y1:y2, x1:x2].astype(int)
    return bool(np.abs(first - second).max() <= 12)


def masked_share(pixels: npt.NDArray[np.uint8], box: tuple[int, int, int, int]) -> float:
    x1, y1, x2, y2 = box
    region = pixels[y1:y2, x1:x2].astype(int)
    return float((np.abs(region - FILL).max(axis=2) <= 12).mean())


@pytest.fixture
def plate_photo(tmp_path: Path) -> tuple[Path, tuple[int, int, int, int]]:
    image = Image.new("RGB", (480, 320), (90, 110, 90))
    letters = draw_plate(image, 150, 200)
    path = tmp_path / "car.png"
    image.save(path)
    return path, letters


def test_the_text_model_ships_inside_veil_with_its_licence_and_checksum() -> None:
    path = model_path(TEXT_DETECTOR)
    assert path.parent.name == "weights" and path.parent.parent.name == "veil"
    assert len(verified_model_bytes(TEXT_DETECTOR)) == path.stat().st_size < 10_000_000
    notes = (path.parent / "README.md").read_text()
    assert TEXT_DETECTOR.sha256 in notes and "rapidocr-onnxruntime" in notes
    assert "Apache License" in (path.parent / "LICENSE-ppocr-v4-det").read_text()


def test_a_plate_is_masked_as_a_box_and_listed_with_why(
    plate_photo: tuple[Path, tuple[int, int, int, int]], tmp_path: Path
) -> None:
    source, letters = plate_photo
    report = veil.anonymize_file(source, tmp_path / "out.png")
    assert report.ok, report.error
    with Image.open(tmp_path / "out.png") as image:
        assert masked_share(np.asarray(image.convert("RGB")), letters) == 1.0
    (listed,) = report.text
    assert (listed.label, listed.decision) == ("text", "mask") and "plate" in (listed.reason or "")
    (region,) = [r for r in load_plan(plan_path(tmp_path / "out.png")).regions if r.kind is Kind.TEXT]
    assert (region.id, region.shape, region.label, region.decision) == (
        "t1",
        Shape.BOX,
        "text",
        Decision.MASK,
    )


def test_with_text_off_a_plate_stays_readable(
    plate_photo: tuple[Path, tuple[int, int, int, int]], tmp_path: Path
) -> None:
    source, letters = plate_photo
    options = AnonymizeOptions(text=TextOptions(hide=False))
    report = veil.anonymize_file(source, tmp_path / "out.png", options)
    assert report.ok and report.text == []
    assert unchanged(source, tmp_path / "out.png", letters)


def test_the_cli_warns_when_text_is_left_readable(
    plate_photo: tuple[Path, tuple[int, int, int, int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from veil.cli import main

    assert main(["anonymize", str(plate_photo[0]), "-o", str(tmp_path / "out"), "-q", "--no-text"]) == 0
    assert "--no-text: plates, name badges and screens are left readable" in capsys.readouterr().err


def test_the_astronauts_name_badge_is_masked(astronaut: npt.NDArray[np.uint8]) -> None:
    result = veil.anonymize_image(astronaut)
    assert masked_share(result.image, BADGE_NAME) >= 0.9
    assert all(found.label is TextLabel.TEXT for found in result.text)


def test_a_sign_held_among_people_is_left_readable_and_listed(
    astronaut: npt.NDArray[np.uint8], tmp_path: Path
) -> None:
    image = Image.fromarray(np.hstack([astronaut, astronaut]))  # people: two sure faces
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=44)
    draw.rectangle((10, 320, 220, 490), fill=(250, 250, 240))  # below and left of her head
    letters = [
        draw.textbbox((25, 330 + 52 * i), word, font=font) for i, word in enumerate(("FREE", "THE", "PRESS"))
    ]
    for i, word in enumerate(("FREE", "THE", "PRESS")):
        draw.text((25, 330 + 52 * i), word, font=font, fill=(200, 20, 20))
    source = tmp_path / "protest.png"
    image.save(source)
    report = veil.anonymize_file(source, tmp_path / "out.png")
    assert report.ok
    for box in letters:
        assert unchanged(source, tmp_path / "out.png", tuple(int(v) for v in box))  # type: ignore[arg-type]
    with Image.open(tmp_path / "out.png") as out:
        # beside a placard the badge is found only on her chest, searched closer (veil.text.chest_lines)
        assert masked_share(np.asarray(out.convert("RGB")), BADGE_NAME) >= 0.9
    signs = [t for t in report.text if t.label == "sign"]
    assert len(signs) >= 3 and all(t.decision == "drop" for t in signs)
    assert report.faces  # the astronaut is still masked
    plan = load_plan(plan_path(tmp_path / "out.png"))
    assert all(r.decision is Decision.DROP for r in plan.regions if r.label == "sign")


def line(x: float, y: float, width: float, letters: float, name: float = 0.9) -> TextLine:
    """A line of text; `name`, its score, tells lines apart in a test."""
    return TextLine((x, y, x + width, y + letters), letters, name)


def test_what_is_a_sign_follows_from_letter_size_and_blocks() -> None:
    size = (1000, 700)
    face = [(500.0, 300.0, 560.0, 380.0), (800.0, 300.0, 860.0, 380.0)]  # people: two sure faces, 80 px tall
    plate = line(100, 500, 120, 28, 0.51)  # a third of a face, alone
    badge = [line(700, 500, 60, 5, 0.52), line(700, 506, 60, 5, 0.53)]  # a block, but tiny
    placard = [line(100, 50, 300, 30, 0.54), line(100, 85, 280, 30, 0.55)]  # a block, letters 3/8 of a face
    word = line(600, 60, 120, 60, 0.56)  # one line, as tall as 3/4 of a face: masked all the same
    small_print = line(150, 120, 80, 10, 0.57)  # under the placard's lines, on its board
    on_face = line(510, 320, 30, 6, 0.58)  # the detector marks an eye now and then
    huge = line(300, 580, 200, 110, 0.59)  # letters over 15% of the picture: a banner, or not text
    found = read_text([plate, *badge, *placard, word, small_print, on_face, huge], face, size)
    labels = {f.line.score: f.label for f in found}
    assert labels == {
        0.51: TextLabel.TEXT,
        0.52: TextLabel.TEXT,
        0.53: TextLabel.TEXT,
        0.54: TextLabel.SIGN,
        0.55: TextLabel.SIGN,
        0.56: TextLabel.TEXT,
        0.57: TextLabel.SIGN,
        0.59: TextLabel.SIGN,
    }
    masked = next(f for f in found if f.line.score == 0.51)
    assert masked.line.box[0] < 100 and masked.line.box[2] > 220  # grown past its ends


def test_without_people_all_text_is_masked_and_words_side_by_side_are_no_sign() -> None:
    close_plate = line(300, 300, 400, 95)  # a plate photographed from close by: letters 14% of the picture
    block = [line(100, 50, 300, 30), line(100, 85, 280, 30)]  # a shop sign of two lines
    found = read_text([close_plate, *block], [], (1000, 700))
    assert [f.label for f in found] == [TextLabel.TEXT] * 3
    one_face = [(500.0, 300.0, 560.0, 380.0)]  # one sure face, maybe a false one on a car, is not people
    assert [f.label for f in read_text(block, one_face, (1000, 700))] == [TextLabel.TEXT] * 2
    face = [(500.0, 300.0, 560.0, 380.0), (800.0, 300.0, 860.0, 380.0)]
    beside = [line(100, 500, 90, 30), line(200, 500, 90, 30)]  # "AB" and "1234" of one plate
    assert [f.label for f in read_text(beside, face, (1000, 700))] == [TextLabel.TEXT] * 2


class NeverConfirms:
    def __init__(self) -> None:
        self.looked: list[list[float]] = []

    def look(self, image: object, box: npt.NDArray[np.float32], until_confirmed: bool = False) -> Look:
        self.looked.append(box.tolist())
        return Look(small=False, centerface=(0.0,), retinaface=(0.0,))


def test_a_weak_candidate_on_a_sign_needs_a_look_and_a_sure_face_does_not() -> None:
    candidates = Detections(
        np.array([[10, 10, 30, 30], [60, 10, 80, 30], [200, 200, 220, 220]], np.float32),
        np.array([0.9, 0.15, 0.15], np.float32),
    )
    choice = Choice(candidates, (Reason.SURE, Reason.AMONG_PEOPLE, Reason.AMONG_PEOPLE), shows_people=True)
    looks = NeverConfirms()
    image = np.zeros((300, 300, 3), np.uint8)
    decided = off_signs(image, choice, [(0, 0, 100, 40)], looks)  # type: ignore[arg-type]
    assert decided.reasons == (Reason.SURE, Reason.ON_SIGN, Reason.AMONG_PEOPLE)
    assert looks.looked == [[60, 10, 80, 30]]
    assert not Reason.ON_SIGN.masked


def test_verification_fails_a_plate_readable_under_its_mask(
    plate_photo: tuple[Path, tuple[int, int, int, int]], tmp_path: Path
) -> None:
    source, _ = plate_photo
    report = veil.anonymize_file(source, tmp_path / "out.png", AnonymizeOptions(verify=False))
    plan = load_plan(plan_path(tmp_path / "out.png"))
    unmasked = tmp_path / "unmasked.png"
    unmasked.write_bytes(source.read_bytes())  # an output where rendering forgot the plate
    verifier = Verifier(VerifyOptions(recognition=False))
    verdict = verifier.verify(source, unmasked, plan=plan)
    assert not verdict.passed
    assert [f.check for f in verdict.failures] == [Check.TEXT] and "t1" in verdict.failures[0].message
    assert verifier.verify(source, Path(report.output or ""), plan=plan).passed


def test_a_solid_mask_is_not_searched_for_text_even_where_the_original_matched_it(
    plate_photo: tuple[Path, tuple[int, int, int, int]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, _ = plate_photo
    report = veil.anonymize_file(source, tmp_path / "out.png", AnonymizeOptions(verify=False))
    plan = load_plan(plan_path(tmp_path / "out.png"))
    masked = np.asarray(Image.open(report.output or ""))
    original = np.asarray(Image.open(source).convert("RGB"))
    searched: list[object] = []
    real = verify_text.lines_within

    def lines_within(image: npt.NDArray[np.uint8], box: object) -> object:
        searched.append(box)
        return real(image, box)  # type: ignore[arg-type]

    monkeypatch.setattr(verify_text, "lines_within", lines_within)
    # the "original" already holds the mask: nothing changed, but the box is one colour
    assert verify_text.text_under_masks(Changes(masked, masked, 12), plan, None) == []
    assert searched == []
    # the plate left as it was: searched, and readable
    assert verify_text.text_under_masks(Changes(original, original, 12), plan, None)
    assert len(searched) == 1


def test_text_the_plan_does_not_list_goes_to_review(
    plate_photo: tuple[Path, tuple[int, int, int, int]], tmp_path: Path
) -> None:
    source, _ = plate_photo
    veil.anonymize_file(source, tmp_path / "out.png", AnonymizeOptions(verify=False))
    plan = load_plan(plan_path(tmp_path / "out.png"))
    plate = plan.region("t1")
    assert plate.box is not None
    # a person removed the plate's region and masked something else by hand
    edited = plan.drawn(box=(0, 0, 20, 20), label="logo")
    edited = type(edited)(edited.source, tuple(r for r in edited.regions if r.id != "t1"), edited.mask)
    rendered = veil.render_file(source, edited, tmp_path / "edited.png")
    assert rendered.verification is not None
    assert rendered.verification.passed
    assert [f.check for f in rendered.verification.review] == [Check.TEXT]
    assert rendered.verification.review[0].message == "text the plan does not list"


def test_a_passing_plate_is_masked_in_every_frame_of_a_clip(tmp_path: Path) -> None:
    source = tmp_path / "street.mp4"
    letters = []
    with av.open(str(source), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 480, 320, "yuv420p"
        for index in range(30):
            image = Image.new("RGB", (480, 320), (90, 110, 90))
            letters.append(draw_plate(image, 30 + 6 * index, 200))
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24")))
        out.mux(stream.encode())
    report = veil.anonymize_file(source, tmp_path / "out.mp4", AnonymizeOptions(verify=False))
    assert report.ok, report.error
    with av.open(str(tmp_path / "out.mp4")) as result:
        frames = [frame.to_ndarray(format="rgb24") for frame in result.decode(video=0)]
    assert len(frames) == 30
    assert [masked_share(frame, box) >= 0.95 for frame, box in zip(frames, letters, strict=True)] == [
        True
    ] * 30
    plan = json.loads(plan_path(tmp_path / "out.mp4").read_text())
    text = [r for r in plan["regions"] if r["kind"] == "text"]
    assert text and all(r["label"] == "text" and r["decision"] == "mask" for r in text)
    assert report.text and report.text[0].label == "text"

    # verification checks every frame's text masks: the output passes, the original in its place fails
    verifier = Verifier(VerifyOptions(recognition=False))
    masks_plan = load_plan(plan_path(tmp_path / "out.mp4"))
    assert not [
        f
        for f in verifier.verify(source, tmp_path / "out.mp4", plan=masks_plan).failures
        if f.check is Check.TEXT
    ]
    unmasked = tmp_path / "unmasked.mp4"
    unmasked.write_bytes(source.read_bytes())
    failed = [f for f in verifier.verify(source, unmasked, plan=masks_plan).failures if f.check is Check.TEXT]
    assert {f.frame for f in failed} == set(range(30))


def test_the_text_detector_finds_a_plate_in_any_picture_size() -> None:
    for width, height in ((240, 160), (480, 320), (1920, 1080)):
        image = Image.new("RGB", (480, 320), (90, 110, 90))
        letters = draw_plate(image, 150, 200)
        scaled = np.asarray(image.resize((width, height)))
        (found,) = text_detector().lines(scaled)
        sx, sy = width / 480, height / 320
        centre = ((letters[0] + letters[2]) / 2 * sx, (letters[1] + letters[3]) / 2 * sy)
        x1, y1, x2, y2 = found.box
        assert x1 <= centre[0] <= x2 and y1 <= centre[1] <= y2
