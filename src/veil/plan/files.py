"""Plans on disk: beside each output as OUTPUT.plan.json, written atomically,
and read back only for the original they were made for."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from veil.errors import PlanError
from veil.media.files import publish_bytes
from veil.plan.model import Plan
from veil.plan.read import plan_from_dict

PLAN_SUFFIX = ".plan.json"
MAX_PLAN_BYTES = 1 << 30


def plan_path(output: Path) -> Path:
    """Where `veil anonymize` writes the plan of `output`."""
    return output.with_name(output.name + PLAN_SUFFIX)


def is_plan(path: Path) -> bool:
    return path.name.endswith(PLAN_SUFFIX)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def load_plan(path: Path | str) -> Plan:
    """Read a plan; PlanError, one line, when it is not one this veil can use."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_PLAN_BYTES:
            raise PlanError(f"plan: {path.name} is larger than {MAX_PLAN_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError(f"plan: no such file {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PlanError(f"plan: cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise PlanError(f"plan: {path.name} is not JSON ({e.msg}, line {e.lineno})") from None
    return plan_from_dict(data)


def save_plan(plan: Plan, path: Path | str, replace: bool = False) -> None:
    """Write `plan` atomically (never over an existing file, unless `replace`)."""
    publish_bytes(Path(path), plan_json(plan).encode("utf-8"), replace=replace)


def plan_json(plan: Plan) -> str:
    """Compact JSON with one region per line, for people and for diff."""
    data = plan.to_dict()
    regions = data.pop("regions")
    head = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    lines = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in regions]
    body = "[\n" + ",\n".join(lines) + "\n]" if lines else "[]"
    return head[:-1] + ',"regions":' + body + "}\n"


def check_plan_source(plan: Plan, original: Path, sha256: str | None = None) -> None:
    """Refuse a plan made for another file than `original`."""
    sha256 = sha256 or file_sha256(original)
    if sha256 != plan.source.sha256:
        raise PlanError(
            f"plan: made for {plan.source.name} (sha256 {plan.source.sha256[:12]}...), "
            f"not for {original.name} (sha256 {sha256[:12]}...)"
        )
