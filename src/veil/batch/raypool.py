"""`--ray`: the batch's files worked on by Ray actors, each holding its own
models, while the journal stays with this process (the driver).

Only jobs (paths) and reports travel through Ray, never pixels: Ray's
object store spills to disk, and media must not land there. An actor that
dies (killed, out of memory) is started again by Ray; the file it held is
tried once more, as with `--jobs`, after the journal has removed whatever
of it had landed.

Without an address veil starts a Ray of its own, inside the private
network namespace that `veil.netns` makes (the CLI runs itself again in
one), with a private home and temporary folder that are removed at the
end: Ray writes an access token in the home folder, logs that name every
file in the temporary one, and its usage module reads
`~/ray_bootstrap_config.yaml`; when that file is missing, it asks cloud
metadata addresses what machine this is, whatever the reporting setting.
With an address, veil joins a cluster someone runs: every node must see the
inputs and the output folder at the same paths (a shared file system).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from veil.batch.workers import ATTEMPTS, core_shares, die_with_parent
from veil.detection import engine
from veil.errors import RayStartError, VeilError, WorkerDiedError, quiet_library_logs
from veil.jobs import Job, failure_report
from veil.media.files import output_root, sweep_beside
from veil.media.private import PrivateFolder
from veil.options import AnonymizeOptions
from veil.pipeline.anonymizer import Anonymizer
from veil.report import FileReport, RunReport

_PROBES, _PROBE_WAIT_S = 60, 1.0  # how long an actor Ray is starting again may take to answer
CLUSTER_WORKER_CPUS = 4  # what an actor asks of a cluster's node (at most), and the threads it runs
# Ray's usage module reads the cluster's launch file from the home folder;
# one that says nothing keeps it from asking the cloud instead.
_BOOTSTRAP = "# veil's private Ray home: no launch config, and no cloud to ask about.\n{}\n"


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


class VeilWorker:
    """A Ray actor: one worker's models, anonymizing one file at a time."""

    def __init__(
        self, options: AnonymizeOptions, folder: str, cores: set[int] | None, threads: int = 1
    ) -> None:
        os.environ["ORT_DISABLE_TELEMETRY"] = "1"
        die_with_parent()  # its raylet; the driver's process group does not hold it
        quiet_library_logs()
        with contextlib.suppress(OSError):  # a node without the driver's folder: absolute paths still work
            os.chdir(folder)
        if cores is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, cores)
        else:
            engine.set_threads(threads)
        self.anonymizer = Anonymizer(options)

    def describe(self) -> RunReport:
        return self.anonymizer.run_report()

    def ready(self) -> bool:
        """An answer once the actor is up (after a restart: its models loaded)."""
        return True

    def anonymize(self, job: Job) -> FileReport:
        with output_root(job.root):
            return self.anonymizer.anonymize(job.source, job.target)


class RayPool:
    """`jobs` Ray actors anonymizing files with `options`; a Ray of veil's
    own, on this machine only, when `address` is None."""

    def __init__(self, jobs: int, options: AnonymizeOptions, address: str | None = None) -> None:
        try:
            import ray
        except ImportError as e:
            raise RayStartError("--ray needs Ray: pip install 'veil[ray]'") from e
        self._ray = ray
        self._private: Path | None = None
        self._folder: PrivateFolder | None = None
        self._home = os.environ.get("HOME")
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
        os.environ["ORT_DISABLE_TELEMETRY"] = "1"
        try:
            if address is None:
                self._start_local(jobs)
            else:
                ray.init(
                    address=address,
                    log_to_driver=False,
                    runtime_env={"env_vars": {"ORT_DISABLE_TELEMETRY": "1", "RAY_USAGE_STATS_ENABLED": "0"}},
                )
        except Exception as e:  # Ray's own errors are many and not all exported
            said = _last_line(self._private / "start.log") if self._private else ""
            self._clean()
            why = f"{type(e).__name__}: {e}".splitlines()[0]
            raise RayStartError(f"Ray did not start: {why}" + (f" ({said})" if said else "")) from e
        if address is None:
            cores = len(os.sched_getaffinity(0))
            shares: list[set[int] | None] = list(core_shares(jobs))
            each = max(cores // jobs, 1) if jobs <= cores else cores / jobs
        else:  # as many actors of up to 4 CPUs as the cluster holds, `jobs` at most
            nodes = ray.nodes()  # type: ignore[no-untyped-call]
            largest = max((node["Resources"].get("CPU", 0) for node in nodes if node["Alive"]), default=1)
            each = max(1, min(CLUSTER_WORKER_CPUS, int(largest)))
            total = ray.cluster_resources().get("CPU", each)  # type: ignore[no-untyped-call]
            jobs = max(1, min(jobs, int(total) // each))
            shares = [None] * jobs
        actor = ray.remote(num_cpus=each, max_restarts=-1, max_task_retries=0)(VeilWorker)
        folder = os.getcwd()
        threads = max(1, int(each))
        self._actors: list[Any] = [actor.remote(options, folder, share, threads) for share in shares]

    def _start_local(self, jobs: int) -> None:
        from veil import netns

        if not netns.inside():
            raise RayStartError("a local Ray runs only in veil's own network namespace (the CLI makes it)")
        self._folder = PrivateFolder("veil-ray-")  # a killed run's is swept first: its logs name files
        self._private = self._folder.path
        home = self._private / "home"
        home.mkdir()
        (home / "ray_bootstrap_config.yaml").write_text(_BOOTSTRAP)
        os.environ["HOME"] = str(home)  # for Ray's processes, which inherit it, and its token
        # Ray's C++ core logs to the terminal while it starts (that this
        # namespace has no route out, for one); kept, and said only if it fails.
        said = self._private / "start.log"
        saved = os.dup(2)
        try:
            with said.open("wb") as log:
                os.dup2(log.fileno(), 2)
                try:
                    self._ray.init(
                        num_cpus=max(len(os.sched_getaffinity(0)), jobs),
                        include_dashboard=False,
                        _node_ip_address="127.0.0.1",
                        _temp_dir=str(self._private / "ray"),
                        log_to_driver=False,
                        logging_level=logging.ERROR,
                    )
                finally:
                    os.dup2(saved, 2)
        finally:
            os.close(saved)

    def describe(self) -> RunReport:
        """The run report's head, from the first actor that answers."""
        from ray.exceptions import RayError

        for actor in self._actors * ATTEMPTS:
            with contextlib.suppress(RayError):
                head: RunReport = self._ray.get(actor.describe.remote())
                return head
        raise RayStartError("no Ray worker could load the models")

    def run(
        self, jobs: list[tuple[int, Job]], starting: Callable[[Job], None]
    ) -> Iterator[tuple[int, Job, FileReport]]:
        """Anonymize `jobs` (index, job), one an actor at a time, and yield
        each as it ends; `starting(job)` is called before each try. An actor
        whose file failed with it is given no other until it answers again
        (Ray is starting it anew), so a file is not charged for a restart."""
        from ray.exceptions import RayError, RayTaskError

        waiting = list(reversed(jobs))
        attempts: dict[int, int] = {}
        idle = list(range(len(self._actors)))
        running: dict[Any, tuple[int, int, Job]] = {}  # a result's reference: actor, index, job
        probing: dict[Any, tuple[int, int]] = {}  # a probe's reference: actor, probes so far
        while waiting or running:
            while waiting and idle:
                index, job = waiting.pop()
                actor = idle.pop()
                starting(job)
                attempts[index] = attempts.get(index, 0) + 1
                running[self._actors[actor].anonymize.remote(job)] = (actor, index, job)
            if not running and not probing:  # every actor is lost
                for index, job in reversed(waiting):
                    yield index, job, failure_report(job.source, WorkerDiedError("Ray worker", ATTEMPTS))
                return
            ready, _ = self._ray.wait([*running, *probing], num_returns=1)
            for reference in ready:
                if reference in probing:
                    actor, probes = probing.pop(reference)
                    try:
                        self._ray.get(reference)
                        idle.append(actor)
                    except RayError:
                        if probes < _PROBES:
                            time.sleep(_PROBE_WAIT_S)
                            probing[self._actors[actor].ready.remote()] = (actor, probes + 1)
                    continue
                actor, index, job = running.pop(reference)
                try:
                    report: FileReport = self._ray.get(reference)
                except RayTaskError as e:  # anonymize_file reports errors; this is a bug, said as one
                    idle.append(actor)
                    yield index, job, failure_report(job.source, VeilError(str(e).splitlines()[0]))
                    continue
                except RayError:  # the actor died with the file (Ray starts it again), or its worker
                    probing[self._actors[actor].ready.remote()] = (actor, 1)
                    with output_root(job.root):
                        sweep_beside(job.target)  # what it was writing, if anything
                    if attempts[index] < ATTEMPTS:
                        waiting.append((index, job))
                    else:
                        yield index, job, failure_report(job.source, WorkerDiedError("Ray worker", ATTEMPTS))
                    continue
                idle.append(actor)
                yield index, job, report

    def close(self, cancel: bool = False) -> None:
        with contextlib.suppress(Exception):
            self._ray.shutdown()
        self._clean()

    def _clean(self) -> None:
        if self._folder is not None:
            self._folder.remove()
            self._folder = self._private = None
        if self._home is not None:
            os.environ["HOME"] = self._home
