"""`veil review`: a page on this machine only, where a person sees every
region of every file of a run, corrects the plans, renders and verifies
the outputs again, and approves them (`batch`, `draft`, `pictures`,
`views`, served by `server`)."""

from veil.errors import ReviewError
from veil.review.batch import Batch, State
from veil.review.draft import Draft, draft_path

__all__ = ["Batch", "Draft", "ReviewError", "State", "draft_path"]
