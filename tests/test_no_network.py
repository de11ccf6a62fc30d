"""Nothing leaves the machine: the real CLI, run in a network namespace of its
own under strace, connects to nothing beyond loopback, listens on loopback
only, and writes nothing in the home folder; and conftest's in-process guard
stops a test that tries.

The namespace is the belt (nothing could leave even if veil tried); the
strace log is the proof (veil did not try: the attempt is logged whether or
not the network is there). AF_UNIX sockets are files on this machine, and
AF_NETLINK talks to this machine's kernel (interface and route queries), so
neither can reach another machine.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from conftest import NetworkUse, taken_attempts, unsilenced
from videos import make_clip

STRACE = ["strace", "-f", "-qq", "-y", "-e", "trace=network,file,%process"]
VEIL = [sys.executable, "-m", "veil"]

# The address families a socket may have, and those that reach no other machine.
FAMILIES = {"AF_UNIX", "AF_LOCAL", "AF_NETLINK", "AF_INET", "AF_INET6"}
LOCAL_FAMILIES = {"AF_UNIX", "AF_LOCAL", "AF_NETLINK", "AF_UNSPEC"}  # AF_UNSPEC: connect() dissolving
ADDRESSED = {"connect", "bind", "sendto", "sendmsg", "sendmmsg"}
WRITES = {
    "creat", "mkdir", "mkdirat", "rename", "renameat", "renameat2", "link", "linkat", "symlink",
    "symlinkat", "unlink", "unlinkat", "rmdir", "truncate", "chmod", "fchmodat", "chown", "lchown",
    "fchownat", "utime", "utimes", "utimensat", "futimesat", "setxattr", "lsetxattr", "removexattr",
    "lremovexattr", "mknod", "mknodat",
}  # fmt: skip
OPENS = {"open", "openat", "openat2"}
WRITE_FLAGS = re.compile(r"\bO_(WRONLY|RDWR|CREAT|TRUNC|TMPFILE)\b")
CALL = re.compile(r"^\d+\s+(\w+)\((.*)$")  # an entry; "<... x resumed>" lines carry no arguments
SOCKADDR = re.compile(r"\{sa_family=(AF_\w+)([^}]*)\}")
STRING = re.compile(r'(?:(\d+|AT_FDCWD)<([^>]*)>, )?"((?:[^"\\]|\\.)*)"')  # -y: a folder by its fd
FD_PATH = re.compile(r"\d+<(/[^>]*)>(?!, \")")  # a file named by its fd alone (futimens)

# A name lookup from here would go out through this machine's resolver, even
# one on loopback (127.0.0.53, Docker's 127.0.0.11).
NAME_SERVER_PORT = 53

# The review server's one-request client, run inside the namespace beside the
# traced server: it brings the namespace's loopback up (a fresh namespace
# starts with it down), reads the URL the server prints, signs in with the
# token, lists the files, and ends the server with Ctrl-C as a person would.
REVIEW_CLIENT = r"""
import fcntl, http.client, json, os, signal, socket, struct, subprocess, sys, urllib.parse
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    flags = struct.unpack("16sh22x", fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sh22x", b"lo", 0)))[1]
    if not flags & IFF_UP:  # down in a fresh namespace; up already where there is none
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))
outdir, *traced = sys.argv[1:]
server = subprocess.Popen([*traced, "review", outdir, "--no-browser"], stderr=subprocess.PIPE, text=True)
try:
    said = []
    for line in server.stderr:
        said.append(line)
        if line.strip().startswith("http://"):
            break
    url = urllib.parse.urlsplit(said[-1].strip())
    status = []
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    connection.request("GET", f"/?{url.query}")
    answer = connection.getresponse()
    answer.read()
    status.append(answer.status)
    cookie = answer.getheader("set-cookie", "").split(";")[0]
    connection.request("GET", "/api/files", headers={"cookie": cookie})
    answer = connection.getresponse()
    files = json.loads(answer.read())["files"] if answer.status == 200 else []
    status.append(answer.status)
    connection.close()
    tracee = open(f"/proc/{server.pid}/task/{server.pid}/children").read().split()
    os.kill(int(tracee[0]), signal.SIGINT)
    said.append(server.stderr.read())
    returncode = server.wait(60)
finally:
    if server.poll() is None:
        server.kill()
print(json.dumps({"status": status, "files": len(files), "returncode": returncode, "said": "".join(said)}))
"""


# Lines as strace 6 writes them, for the readers' own test (TMP: its tmp_path).
SAMPLE_LOG = """\
7  connect(3<socket:[1]>, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("93.184.215.14")}, 16) = -1 ENETUNREACH (Network is unreachable)
7  connect(4<socket:[2]>, {sa_family=AF_INET, sin_port=htons(8000), sin_addr=inet_addr("127.0.0.1")}, 16) = 0
7  connect(5<socket:[3]>, {sa_family=AF_INET6, sin6_port=htons(80), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28 <unfinished ...>
7  connect(6<socket:[4]>, {sa_family=AF_UNIX, sun_path="/run/dbus/system_bus_socket"}, 110) = -1 ENOENT (No such file or directory)
7  sendto(7<socket:[5]>, "x", 1, 0, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, 16) = 1
7  sendto(8<socket:[6]>, [{nlmsg_len=20, nlmsg_type=RTM_GETADDR}], 20, 0, {sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000000}, 12) = 20
7  bind(9<socket:[7]>, {sa_family=AF_INET, sin_port=htons(0), sin_addr=inet_addr("0.0.0.0")}, 16) = 0
7  socket(AF_PACKET, SOCK_RAW, 768) = 10
7  <... connect resumed>) = 0
7  mkdir("home/.cache", 0700) = 0
7  openat(AT_FDCWD<TMP/out>, "../home/.cache/id", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 3<TMP/home/.cache/id>
7  openat(3<TMP/home>, ".config", O_RDONLY|O_DIRECTORY) = -1 ENOENT (No such file or directory)
7  renameat2(3<TMP/out>, ".part", AT_FDCWD<TMP>, "out/one.jpg", RENAME_NOREPLACE) = 0
7  utimensat(4<TMP/out/one.jpg.plan.json>, NULL, NULL, 0) = 0
"""  # noqa: E501


@dataclass(frozen=True)
class Traced:
    """One traced run of the CLI: strace's log and the folders it ran with."""

    log: str
    home: Path
    cwd: Path
    returncode: int
    said: str


@pytest.fixture(scope="module")
def sandbox() -> list[str]:
    """The command that gives a run a network namespace of its own.

    strace and unshare must be there (.ci/run installs them): a missing one
    fails. A kernel or container that refuses a network namespace still gets
    the proof (the strace log records every attempt, network or not), without
    the belt; one that refuses tracing skips, with its reason."""
    missing = [tool for tool in ("strace", "unshare") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"not installed: {', '.join(missing)}; apt-get install strace util-linux (as .ci/run does)",
            pytrace=False,
        )
    refusals = []
    for prefix in (["unshare", "-rn"], ["unshare", "-n"]):  # -n alone: root that may not map users
        probe = subprocess.run([*prefix, "true"], capture_output=True, text=True, timeout=30)
        if probe.returncode == 0:
            break
        refusals.append(f"{' '.join(prefix)}: {probe.stderr.strip()}")
    else:
        prefix = []  # no namespace here: the log alone must show that nothing was tried
    probe = subprocess.run([*prefix, *STRACE, "-o", "/dev/null", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"this machine refuses tracing: {probe.stderr.strip()} ({'; '.join(refusals)})")
    return prefix


def fresh_home_env(home: Path) -> dict[str, str]:
    """The environment with HOME in an empty folder, no XDG folders elsewhere, and
    nothing that silences onnxruntime (`unsilenced`): veil must do that itself.
    (This pytest process has ORT_DISABLE_TELEMETRY once any test made a
    detector, and CI machines set CI=true.)"""
    home.mkdir()
    env = unsilenced({k: v for k, v in os.environ.items() if not k.startswith("XDG_")})
    env["HOME"] = str(home)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # others edit the package: no .pyc written beside it
    return env


@pytest.fixture(scope="module")
def anonymized(
    sandbox: list[str], tmp_path_factory: pytest.TempPathFactory, astronaut: npt.NDArray[np.uint8]
) -> Traced:
    """`veil anonymize` on a photo and a short clip, verification and the
    recognition check on (the defaults with the audit extra), by two worker
    processes (`--jobs 2`), each with its decoding child process."""
    root = tmp_path_factory.mktemp("offline")
    (root / "in").mkdir()
    Image.fromarray(astronaut).save(root / "in" / "one.jpg", quality=90)
    make_clip(root / "in" / "clip.mp4", astronaut, frames=6)
    return traced_anonymize(sandbox, root, "home", "out", "--jobs", "2")


def traced_anonymize(sandbox: list[str], root: Path, home: str, out: str, *extra: str) -> Traced:
    """`veil anonymize in -o OUT EXTRA...` in `root`, traced in the sandbox,
    with an empty HOME of its own."""
    env = fresh_home_env(root / home)
    log = root / f"{out}.strace"
    done = subprocess.run(
        [*sandbox, *STRACE, "-o", str(log), *VEIL, "anonymize", "in", "-o", out, *extra],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return Traced(log.read_text(errors="replace"), root / home, root, done.returncode, done.stderr)


@pytest.fixture(scope="module")
def reviewed(sandbox: list[str], anonymized: Traced) -> Traced:
    """`veil review` on that output, asked for its page and its files from inside the namespace."""
    root = anonymized.cwd
    env = fresh_home_env(root / "review-home")
    log = root / "review.strace"
    done = subprocess.run(
        [*sandbox, sys.executable, "-c", REVIEW_CLIENT, "out", *STRACE, "-o", str(log), *VEIL],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    client = json.loads(done.stdout)
    assert client["status"] == [303, 200] and client["files"] == 2, client
    return Traced(
        log.read_text(errors="replace"), root / "review-home", root, client["returncode"], client["said"]
    )


@pytest.fixture(scope="module")
def rayed(sandbox: list[str], anonymized: Traced) -> Traced:
    """The same batch with `--ray --jobs 2`: a Ray of veil's own, which veil
    runs in a network namespace it makes itself (nested in the test's)."""
    pytest.importorskip("ray", reason="veil[ray] is not installed")
    if not sandbox or sandbox == ["unshare", "-n"]:
        pytest.skip("no user namespaces here, and a local Ray runs only in one")
    return traced_anonymize(sandbox, anonymized.cwd, "ray-home", "out-ray", "--ray", "--jobs", "2")


def calls(log: str, names: set[str]) -> Iterator[tuple[str, str]]:
    """(syscall, the rest of its line) for each entry of the named calls."""
    for line in log.splitlines():
        match = CALL.match(line)
        if match and match[1] in names:
            yield match[1], match[2]


def beyond_loopback(log: str) -> list[str]:
    """Each socket, connect, bind or send whose address is not on this machine."""
    found = []
    for _, rest in calls(log, {"socket"}):
        if rest.split(",")[0] not in FAMILIES:
            found.append(f"socket({rest}")
    for name, rest in calls(log, ADDRESSED):
        addresses = SOCKADDR.findall(rest)
        if name in ("connect", "bind") and not addresses:
            found.append(f"{name}({rest}  [address not decoded]")
        for family, fields in addresses:
            if family in LOCAL_FAMILIES:
                continue
            host = re.search(r'inet_(?:addr\(|pton\(AF_INET6, )"([^"]+)"', fields)
            port = re.search(r"port=htons\((\d+)\)", fields)
            if host is None or port is None or not loopback(host[1]) or int(port[1]) == NAME_SERVER_PORT:
                found.append(f"{name}({rest}")
    return found


def loopback(host: str) -> bool:
    address = ipaddress.ip_address(host)
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def written(log: str, cwd: Path) -> set[Path]:
    """Every path a call that creates, writes, renames, removes or changes a file named (tried or done)."""
    paths: set[Path] = set()
    for name, rest in calls(log, WRITES | OPENS):
        arguments = rest.rsplit(") = ", 1)[0]
        if name in OPENS and not WRITE_FLAGS.search(arguments):
            continue
        for _, folder, text in STRING.findall(arguments):
            paths.add(Path(os.path.normpath(Path(folder or cwd, text))))
        paths.update(Path(p) for p in FD_PATH.findall(arguments))
    return paths


def under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def test_the_log_reader_sees_what_it_must(tmp_path: Path) -> None:
    """The readers above, on lines as strace 6 writes them."""
    log = SAMPLE_LOG.replace("TMP", str(tmp_path))
    found = beyond_loopback(log)
    assert [f.split("(")[0] for f in found] == ["socket", "connect", "sendto", "bind"]
    assert "93.184.215.14" in found[1] and "127.0.0.53" in found[2] and "0.0.0.0" in found[3]
    home = tmp_path / "home"
    assert written(log, tmp_path) == {
        home / ".cache",
        home / ".cache" / "id",
        tmp_path / "out" / ".part",
        tmp_path / "out" / "one.jpg",
        tmp_path / "out" / "one.jpg.plan.json",
    }


def test_anonymize_verifies_with_recognition(anonymized: Traced) -> None:
    assert anonymized.returncode == 0, anonymized.said
    report = json.loads((anonymized.cwd / "out" / "veil-report.json").read_text())
    assert sorted(Path(f["input"]).name for f in report["files"]) == ["clip.mp4", "one.jpg"]
    for file in report["files"]:
        assert file["verification"]["passed"] and file["verification"]["not_run"] == [], file
        assert file["verification"]["faces_compared"] > 0, file  # the recognition check ran
    assert any(m["name"].startswith("dlib") for m in report["verifier_models"])


@pytest.mark.parametrize("run", ["anonymized", "reviewed", "rayed"])
def test_nothing_reaches_beyond_loopback(run: str, request: pytest.FixtureRequest) -> None:
    traced: Traced = request.getfixturevalue(run)
    assert traced.returncode == 0, traced.said
    assert "execve(" in traced.log  # the log is strace's, of the run
    found = beyond_loopback(traced.log)
    assert not found, "beyond loopback:\n" + "\n".join(found)


def test_the_review_server_listens_on_loopback_only(reviewed: Traced) -> None:
    binds = [rest for _, rest in calls(reviewed.log, {"bind"})]
    assert binds and all('inet_addr("127.0.0.1")' in rest for rest in binds), binds
    assert "ended; every change is saved" in reviewed.said


@pytest.mark.parametrize("run", ["anonymized", "reviewed", "rayed"])
def test_nothing_is_written_in_home(run: str, request: pytest.FixtureRequest) -> None:
    """onnxruntime writes a device id and a usage database under HOME/.cache
    when it is imported without ORT_DISABLE_TELEMETRY, which veil.detection.engine sets:
    with that line bypassed, this test failed on mkdir HOME/.cache/Microsoft/...
    (checked by hand with onnxruntime 1.32)."""
    traced: Traced = request.getfixturevalue(run)
    assert traced.returncode == 0, traced.said
    assert sorted(traced.home.rglob("*")) == []
    touched = sorted(str(p) for p in written(traced.log, traced.cwd) if under(p, traced.home))
    assert not touched, "written in HOME:\n" + "\n".join(touched)


def test_anonymize_writes_only_in_its_output_folder(anonymized: Traced) -> None:
    out = anonymized.cwd / "out"
    allowed = {Path("/dev/null")}

    def semaphore(path: Path) -> bool:  # --jobs: multiprocessing's locks, a counter each, no data
        return path.parent == Path("/dev/shm") and path.name.startswith("sem.")

    stray = sorted(
        str(p)
        for p in written(anonymized.log, anonymized.cwd)
        if not under(p, out) and p not in allowed and not semaphore(p)
    )
    assert not stray, "written outside the output folder:\n" + "\n".join(stray)


def test_ray_is_started_in_a_namespace_of_veils_and_leaves_nothing(rayed: Traced) -> None:
    """Ray's processes ran in veil's own namespace (an unshare exec in the
    log), its files went to a private folder that is gone, and the batch is
    the one a local run made."""
    assert rayed.returncode == 0, rayed.said
    namespace = r'execve\("[^"]*unshare", \["[^"]*unshare", "--user", "--map-root-user", "--net"'
    assert re.search(namespace, rayed.log)
    private = {p for p in written(rayed.log, rayed.cwd) if p.name.startswith(("veil-ray-", ".veil-ray-"))}
    assert private and not any(p.exists() for p in private)
    mine = json.loads((rayed.cwd / "out-ray" / "veil-report.json").read_text())["files"]
    theirs = json.loads((rayed.cwd / "out" / "veil-report.json").read_text())["files"]
    assert [f["status"] for f in mine] == [f["status"] for f in theirs] == ["anonymized", "anonymized"]
    assert [f["faces"] for f in mine] == [f["faces"] for f in theirs]
    assert all(f["verification"]["passed"] for f in mine)


def test_the_guard_stops_a_connection_beyond_loopback() -> None:
    with pytest.raises(NetworkUse, match=r"veil tried to reach 192\.0\.2\.1:9 "):
        socket.create_connection(("192.0.2.1", 9), timeout=1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        with pytest.raises(NetworkUse, match=r"192\.0\.2\.1"):
            udp.sendto(b"x", ("192.0.2.1", 9))
        with pytest.raises(NetworkUse, match=r"192\.0\.2\.1"):
            udp.connect(("192.0.2.1", 9))  # sends nothing yet, but a send() after it would not be seen
    with pytest.raises(NetworkUse, match=r"example\.org"):
        socket.getaddrinfo("example.org", 443)
    with (
        socket.socket() as server,
        pytest.raises(NetworkUse, match="veil tried to listen on every interface:0"),
    ):
        server.bind(("", 0))  # every interface
    assert len(taken_attempts()) == 5  # taken, so they do not fail this test at teardown


def test_the_guard_lets_loopback_and_local_sockets_through(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
        port = server.getsockname()[1]
        with socket.create_connection(("localhost", port), timeout=5):
            pass
    if socket.has_ipv6:  # OSError: no IPv6 loopback here, and the guard let it through all the same
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as udp, contextlib.suppress(OSError):
            udp.sendto(b"x", ("::1", 9))
    with socket.socket(socket.AF_UNIX) as local:
        local.bind(str(tmp_path / "s"))
    assert taken_attempts() == []
