"""`veil review`: a page on this machine only, where a person sees every
region of every file of a run, corrects the plans, renders and verifies
the outputs again, and approves them (`batch`, `draft`, `pictures`,
`views`, served by `server`)."""

from veil.errors import ReviewError
from veil.review.draft import Draft, draft_path
from veil.review.run import ReviewedRun, State

__all__ = ["Draft", "ReviewError", "ReviewedRun", "State", "draft_path"]
