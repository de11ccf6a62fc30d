"""Decisions as data: a mask plan per output (`model`), made from what
detection found (`make`), kept beside the output (`files`) and rendered
into it without any detector (`render`)."""

from veil.plan.files import load_plan, plan_path, save_plan
from veil.plan.model import SCHEMA, Decision, Found, FrameBox, Kind, Mask, Plan, Region, Shape, Source

__all__ = [
    "SCHEMA",
    "Decision",
    "Found",
    "FrameBox",
    "Kind",
    "Mask",
    "Plan",
    "Region",
    "Shape",
    "Source",
    "load_plan",
    "plan_path",
    "save_plan",
]
