"""Batches that can be stopped and resumed: a journal of what each file's
job has come to (`journal.py`), worker processes that share the cores
(`workers.py`) or Ray actors (`raypool.py`), and the run that ties them to
the CLI (`run.py`)."""
