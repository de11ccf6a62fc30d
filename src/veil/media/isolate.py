"""Decode untrusted files in a child process that runs under limits.

The decoders under veil are large C libraries (libjpeg-turbo, libpng,
libwebp, libtiff, libheif, FFmpeg), and a crafted file can make one loop,
allocate without bound or crash. So each input is decoded first in a child
process with a ceiling on its address space, no core dumps (a core file
would hold the footage) and a clock: a photo must decode, and a video must
advance by a frame, within the time limit. A file that trips a limit, or
kills its decoder, fails alone with one line (DecodeLimitError) and the
batch goes on.

The children are forked by a small server process that veil starts once
(`python -c` importing this module and the decoders, no models, one
thread), so a child costs a fork, not an interpreter start, and nothing of
the caller's process (its models, threads, `__main__`) is copied. Messages
both ways are length-prefixed pickles on pipes; a parent that dies closes
the server's input, and the kernel then ends the server and its children.

A photo decoded there is handed back whole, so it is decoded once. A video
is decoded there completely, frame by frame, and only then streamed again in
veil's own process; decoding costs milliseconds a frame against seconds for
detection.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any, TypeVar

from veil.errors import DecodeLimitError, DecoderGoneError, VeilError, quiet_library_logs
from veil.options import InputLimits

T = TypeVar("T")
Beat = Callable[[], None]

_HEADER = struct.Struct("!Q")
_PR_SET_PDEATHSIG = 1
_DECODERS = ("veil.media.image", "veil.media.video")


def isolated(work: Callable[..., T], *args: Any, limits: InputLimits) -> T:
    """`work(*args, beat)` run in a child process under `limits`, its result
    returned or its VeilError raised here. `work` calls `beat()` whenever it
    makes progress (a video frame decoded): each call restarts the clock."""
    with _lock:
        for attempt in (1, 2):
            server = _running_server()
            try:
                try:
                    _send(_pipe(server.stdin), (work, args, limits.decode_memory))
                except OSError as e:
                    raise DecoderGoneError from e
                result: T = _outcome(server, limits)
                return result
            except DecoderGoneError as e:  # the server had gone (killed between two files): afresh, once
                _stop(server)
                if attempt == 2:
                    raise DecodeLimitError("the decoding process could not be started") from e
            except VeilError:
                raise  # the exchange ended as it should: the server is ready for the next file
            except (OSError, EOFError) as e:
                _stop(server)
                raise DecodeLimitError(f"the decoding process failed: {e}") from e
            except BaseException:  # interrupted mid-exchange: a fresh server for the next file
                _stop(server)
                raise
        raise AssertionError("unreachable")


_lock = threading.Lock()
_server: subprocess.Popen[bytes] | None = None


def _running_server() -> subprocess.Popen[bytes]:
    global _server
    if _server is None or _server.poll() is not None:
        bootstrap = f"import sys; sys.path[:0] = {sys.path!r}; from veil.media.isolate import serve; serve()"
        _server = subprocess.Popen(
            [sys.executable, "-c", bootstrap],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            close_fds=True,
        )
    return _server


def _pipe(stream: IO[bytes] | None) -> int:
    assert stream is not None
    return stream.fileno()


def _stop(server: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        server.kill()
    server.wait()


def _outcome(server: subprocess.Popen[bytes], limits: InputLimits) -> Any:
    """Read the child's messages until the server says it has ended."""
    replies = _pipe(server.stdout)
    child = 0
    answer: tuple[str, Any] | None = None
    stopped = ""
    while True:
        timeout = None if stopped else limits.decode_seconds
        try:
            message = _receive(replies, timeout)
        except EOFError:
            if not child:
                raise DecoderGoneError from None
            raise
        if message is None:  # the clock ran out: stop the child, then hear the server
            stopped = (
                f"decoding stopped: no progress in {limits.decode_seconds:g} s (the per-file time limit)"
            )
            if not child:  # no child yet: the server itself is stuck
                _stop(server)
                raise DecodeLimitError(stopped)
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
            continue
        kind, payload = message
        if kind == "started":
            child = payload
        elif kind in ("done", "error"):
            answer = message
        elif kind == "exit":
            break
    if stopped:
        raise DecodeLimitError(stopped)
    if answer is None:
        raise _died(payload)
    kind, payload = answer
    if kind == "error":
        raise payload
    return payload


def _died(status: int) -> DecodeLimitError:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = signal.Signals(number).name
        if number == signal.SIGKILL:
            return DecodeLimitError(f"the decoder was killed ({name}): out of memory?")
        return DecodeLimitError(f"the decoder crashed on this file ({name})")
    return DecodeLimitError(f"the decoder ended without an answer (exit status {os.WEXITSTATUS(status)})")


def _send(fd: int, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _receive(fd: int, timeout: float | None) -> Any:
    """The next message, or None when none began within `timeout` seconds."""
    if timeout is not None and not _readable([fd], timeout):
        return None
    header = _read_exactly(fd, _HEADER.size)
    return pickle.loads(_read_exactly(fd, _HEADER.unpack(header)[0]))


def _readable(fds: list[int], timeout: float | None) -> list[int]:
    """Those of `fds` that can be read (or have closed) within `timeout` seconds."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    return [fd for fd, _ in poller.poll(None if timeout is None else timeout * 1000)]


def _read_exactly(fd: int, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = os.read(fd, min(size - len(chunks), 1 << 20))
        if not chunk:
            raise EOFError("the decoding process ended")
        chunks += chunk
    return bytes(chunks)


def serve() -> None:
    """The server: for each request on its input, fork a child to do it,
    wait for the child, then say how it ended. It ends when its input
    closes (veil has ended), killing a child still at work."""
    quiet_library_logs()
    for name in _DECODERS:
        __import__(name)
    requests, replies = sys.stdin.fileno(), sys.stdout.fileno()
    sys.stdout = sys.stderr  # nothing but messages on the reply pipe
    while True:
        try:
            header = _read_exactly(requests, _HEADER.size)
            request = _read_exactly(requests, _HEADER.unpack(header)[0])
        except EOFError:
            return
        pid = os.fork()
        if pid == 0:
            _child(request, replies)
        _send(replies, ("exit", _wait(pid, requests)))


def _wait(pid: int, requests: int) -> int:
    """The child's exit status. No request comes while a child works, so
    input that becomes readable meanwhile is its end: veil is gone."""
    ended = os.pidfd_open(pid)  # readable once the child has exited
    try:
        while True:
            ready = _readable([requests, ended], None)
            if ended in ready:
                return os.waitpid(pid, 0)[1]
            if requests in ready:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                os._exit(0)
    finally:
        os.close(ended)


def _child(request: bytes, replies: int) -> None:
    code = 1
    try:
        _end_with_parent()
        _send(replies, ("started", os.getpid()))
        work, args, memory = pickle.loads(request)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        _send(replies, _run(work, args, memory, replies))
        code = 0
    finally:
        os._exit(code)


def _run(work: Callable[..., Any], args: Any, memory: int, replies: int) -> tuple[str, Any]:
    last = time.monotonic()

    def beat() -> None:
        nonlocal last
        now = time.monotonic()
        if now - last > 0.5:  # a message at most twice a second
            _send(replies, ("beat", None))
            last = now

    try:
        result = work(*args, beat)
    except VeilError as e:
        return "error", e
    except MemoryError:
        return "error", DecodeLimitError(f"decoding needs more than {memory >> 20} MiB (the memory limit)")
    except Exception as e:  # not a decoder's refusal: veil's own bug, said as such
        return "error", VeilError(f"internal error while decoding: {type(e).__name__}: {e}")
    return "done", result


def _end_with_parent() -> None:
    """Have the kernel kill this child when the server (its parent, which
    has one thread) is gone."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
