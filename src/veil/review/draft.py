"""A plan being edited: the plan its output was rendered from, the person's
current version of it, and undo and redo.

Every change is written at once, atomically, to a draft beside the plan
(OUTPUT.plan.draft.json), so a crash of the browser or of veil loses
nothing. The plan beside the output stays the one the output was rendered
from until the draft is applied: `veil verify` and `veil render` never
read a plan that does not describe the file beside it.
"""

from __future__ import annotations

from pathlib import Path

from veil.plan.files import load_plan, save_plan
from veil.plan.model import Plan

DRAFT_SUFFIX = ".plan.draft.json"
HISTORY = 500  # undo steps kept


def draft_path(output: Path) -> Path:
    return output.with_name(output.name + DRAFT_SUFFIX)


class Draft:
    def __init__(self, base: Plan, path: Path) -> None:
        self.base = base  # what the output was rendered from
        self.path = path
        self.plan = load_plan(path) if path.is_file() else base
        self._undo: list[Plan] = []
        self._redo: list[Plan] = []
        self.changes = 0  # edits made since this review began
        self.version = 0  # counts every change of `plan`, undo and redo included

    @property
    def edited(self) -> bool:
        """The draft differs from what the output was rendered from."""
        return self.plan != self.base

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def change(self, plan: Plan) -> None:
        if plan == self.plan:
            return
        self._undo = [*self._undo[-HISTORY + 1 :], self.plan]
        self._redo.clear()
        self._set(plan)
        self.changes += 1

    def undo(self) -> None:
        if self._undo:
            self._redo.append(self.plan)
            self._set(self._undo.pop())

    def redo(self) -> None:
        if self._redo:
            self._undo.append(self.plan)
            self._set(self._redo.pop())

    def applied(self, plan: Plan) -> None:
        """The output has been rendered from `plan`: it is the base now."""
        self.base = plan
        self._set(plan)

    def _set(self, plan: Plan) -> None:
        self.plan = plan
        self.version += 1
        if plan == self.base:
            self.path.unlink(missing_ok=True)
        else:
            save_plan(plan, self.path, replace=True)
