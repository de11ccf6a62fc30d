"""A network of one's own: the process run again in a fresh user and network
namespace (`unshare --user --map-root-user --net`), where the only interface
is this namespace's loopback.

A local Ray is run this way. Ray makes its services reachable from other
machines on purpose: given 127.0.0.1 it looks up the machine's network
address and listens on every interface, and its usage module asks cloud
metadata addresses about the machine before it reads that reporting is off.
No setting turns all of that off; a namespace whose only interface is
loopback leaves no other machine to reach or to be reached from. Files are
shared as before (the mount namespace is the same), and what the process
writes belongs to the user who ran it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import struct
import subprocess
import sys
from collections.abc import Sequence
from typing import NoReturn

from veil.errors import PrivateNetworkError

# Set for the process run again inside the namespace: its own pid (unshare
# execs the command, so the pid does not change), which no child shares.
_MARK = "VEIL_PRIVATE_NETWORK"
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


def inside() -> bool:
    """Whether this process is the one veil ran again in its own namespace."""
    return os.environ.get(_MARK) == str(os.getpid())


def only_loopback() -> bool:
    """Whether loopback is this process's only network interface."""
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def run_again_inside(argv: Sequence[str]) -> NoReturn:
    """Replace this process with `python -m veil ARGV` in a new user and
    network namespace. Raises PrivateNetworkError where user namespaces
    are refused (some distributions turn them off for unprivileged users)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise PrivateNetworkError("unshare (util-linux) is not installed")
    command = [unshare, "--user", "--map-root-user", "--net", "--"]
    trial = subprocess.run([*command, "true"], capture_output=True, text=True)
    if trial.returncode != 0:
        why = trial.stderr.strip().splitlines()[-1] if trial.stderr.strip() else f"exit {trial.returncode}"
        raise PrivateNetworkError(f"this system refuses a private network namespace ({why})")
    sys.stdout.flush()
    sys.stderr.flush()
    environment = dict(os.environ, **{_MARK: str(os.getpid())})
    os.execve(unshare, [*command, sys.executable, "-m", "veil", *argv], environment)


def loopback_up() -> None:
    """Bring the namespace's loopback up (a fresh namespace has it down) and
    check that it is the only interface there."""
    if not only_loopback():
        raise PrivateNetworkError("the private namespace has other interfaces than loopback")
    request = struct.pack("16sh22x", b"lo", 0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sh22x", fcntl.ioctl(s, _SIOCGIFFLAGS, request))[1]
        if not flags & _IFF_UP:
            fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | _IFF_UP))
