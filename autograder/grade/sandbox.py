"""Running untrusted code in a child process: isolation, limits, CPU-time deadlines, a bounded output
buffer, an authenticated record channel, and leaving nothing behind.

Three isolation modes (see autograder/README.md for the threat model), chosen by ``choose``:

``namespaces`` (the default; as root it is required unless another mode is asked for)
    bubblewrap (Debian's ``bwrap``) puts the child in its own PID, mount, network, IPC and UTS
    namespaces: it sees only the paths the caller names (read-only, its scratch folder read-write),
    private size-limited tmpfs on /tmp, /var/tmp and /dev/shm, a /proc holding only its own
    processes, and no network. As root it also runs under a fresh private uid (``setpriv``: no groups,
    no capabilities, no new privileges). Killing bwrap kills the namespace's init, and the kernel
    then kills every process in it: nothing outlives the child, whatever it forked.
``uid`` (root only, explicit: a container that refuses namespaces)
    a private uid per child, no namespaces. Its processes are killed by uid (by the grader itself,
    as root: the child cannot signal it), its files in /tmp, /var/tmp and /dev/shm are removed after.
    It can read every world-readable file and use the network.
``none`` (explicit, or without root where user namespaces are unavailable)
    the grader's own uid; a process group and, for orphans, a subreaper sweep. Isolation against
    accidents only.

In every mode: resource limits (address space, file size, processes, no core dumps), first in line
for the kernel's OOM killer, a watchdog checked every half second (per-test budgets in CPU seconds
of the child's whole process tree, wall-clock backstops), output kept to a bounded head and tail,
records read from a pipe with each one's HMAC checked against a key the child reads once.

One module, over 400 lines, so that every mode's isolation, limits and cleanup are audited in one place.
"""
import atexit
import ctypes
import fcntl
import hashlib
import hmac
import json
import os
import resource
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

UID_BASE = int(os.environ.get("HW3_GRADER_UID_BASE", 2_100_000_000))
UID_POOL = 4096
LOCK_DIR = Path(os.environ.get("HW3_GRADER_LOCK_DIR") or
                ("/run/hw3-autograder-uids" if os.path.isdir("/run") else "/tmp/hw3-autograder-uids"))
MAX_RECORD = 1 << 20          # a record line longer than this is a protocol violation
PROCESSES = 512               # default RLIMIT_NPROC of a private uid (processes and threads)
TMPFS_MB = {"/tmp": 512, "/var/tmp": 64, "/dev/shm": 64}   # the sandbox's private scratch file systems
SCRATCH_MB = 512              # its working folder (HOME), also a private tmpfs with namespaces
MODES = ("namespaces", "uid", "none")

PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER = 1, 38, 36
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # not Linux
    _libc = None


class IsolationError(Exception):
    """The sandbox asked for cannot be set up here (grading must not start)."""


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def become_subreaper() -> bool:
    """Orphans of our children (daemons, double forks) get reparented to us, not to init, so we can
    find and kill them."""
    return bool(_libc) and _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


# --- private uids -----------------------------------------------------------------------------

class UidLease:
    """A uid (and gid of the same number) nobody else is using, held through a lock file until closed.
    Refuses (IsolationError) when the lock folder could have been prepared by someone else."""

    def __init__(self):
        try:
            LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
            info = LOCK_DIR.lstat()
        except OSError as error:
            raise IsolationError(f"cannot create the uid lock folder {LOCK_DIR}: {error.strerror}") from None
        if LOCK_DIR.is_symlink() or not LOCK_DIR.is_dir() or info.st_uid != 0 or info.st_mode & 0o077:
            raise IsolationError(f"{LOCK_DIR} must be a folder owned by root with mode 0700 (it is not: "
                                 f"someone else may have prepared it); remove it and grade again")
        start = secrets.randbelow(UID_POOL)
        for i in range(UID_POOL):
            uid = UID_BASE + (start + i) % UID_POOL
            fd = os.open(LOCK_DIR / f"{uid}.lock", os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.uid, self._fd = uid, fd
            return
        raise IsolationError(f"no free sandbox uid in [{UID_BASE}, {UID_BASE + UID_POOL})")

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def setpriv_prefix(uid: int) -> list:
    """argv prefix that runs a command as ``uid``/``uid`` with no supplementary groups, no new privileges
    and no capabilities."""
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--nnp",
            "--bounding-set=-all", "--inh-caps=-all", "--"]


def pids_of_uid(uid: int) -> list:
    """Every process whose /proc entry belongs to ``uid`` (its effective uid)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def kill_uid(uid: int, within: float = 10.0) -> int:
    """SIGKILL every process of ``uid`` until none is left (or ``within`` seconds pass): done by the
    grader itself, as root, so nothing the uid runs can stop or kill the sweep. Returns how many
    processes were left (0 when the sweep finished)."""
    stop = time.monotonic() + within
    while True:
        pids = pids_of_uid(uid)
        if not pids or time.monotonic() > stop:
            return len(pids)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        reap_children()
        time.sleep(0.01)


def remove_tree(path, within: float = 60.0) -> None:
    """Delete ``path`` however deep or large the tree a submission made there (shutil.rmtree recurses
    in Python and fails on a few thousand levels); never follows symlinks, never raises."""
    try:
        subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=within, env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.SubprocessError):
        pass
    if os.path.lexists(path):
        shutil.rmtree(path, ignore_errors=True)


SHARED_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock", "/dev/mqueue")


def remove_files_of_uid(uid: int, folders=SHARED_WRITABLE) -> None:
    """Delete what ``uid`` left in the world-writable folders and its System V IPC objects (uid mode
    only: with namespaces these are private and vanish with the sandbox)."""
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid == uid:
                    remove_tree(entry.path)
            except OSError:
                pass
    for kind, flag in (("shm", "-m"), ("msg", "-q"), ("sem", "-s")):
        try:
            header, *lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()
        except (OSError, ValueError):
            continue
        header = header.split()
        for line in lines:
            fields = dict(zip(header, line.split()))
            if fields.get("uid") == str(uid) or fields.get("cuid") == str(uid):
                subprocess.run(["ipcrm", flag, fields.get("shmid") or fields.get("msqid") or fields.get("semid")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)


# --- choosing the isolation -------------------------------------------------------------------

@dataclass
class Isolation:
    mode: str                        # one of MODES
    private_uid: bool = False        # a fresh uid per child (root only)
    user_namespace: bool = False     # namespaces without root (bwrap --unshare-user)

    def describe(self) -> str:
        if self.mode == "namespaces":
            return ("namespaces: PID, mount, network, IPC and UTS namespaces (bubblewrap); only the grading "
                    "files visible, read-only; private /tmp, /var/tmp, /dev/shm; no network; "
                    + ("a private uid per student worker" if self.private_uid else
                       "the grader's own uid, mapped in a user namespace (not root)"))
        if self.mode == "uid":
            return ("uid: a private uid per student worker; NOT isolated: files readable "
                    "by all users (other submissions, the staff files), the network, /proc")
        return ("none: the student's code runs as this user, with the same view of files, processes and the "
                "network as the grader (trusted code only)")


_CHOSEN = {}


def choose(requested: str = "auto") -> Isolation:
    """The isolation to grade with. ``auto``: namespaces, which as root must work (else IsolationError:
    fail closed); without root, namespaces if user namespaces work, else none. ``namespaces``/``uid``:
    exactly that or IsolationError. ``none``: none (an explicit choice for trusted code)."""
    if requested not in ("auto", *MODES):
        raise IsolationError(f"unknown isolation {requested!r}: choose auto, {', '.join(MODES)}")
    if requested in _CHOSEN:
        return _CHOSEN[requested]
    if requested == "none":
        chosen = Isolation("none")
    elif requested == "uid":
        if not is_root():
            raise IsolationError("--isolation uid needs root (it runs each test process as a private uid)")
        _probe_uid()
        chosen = Isolation("uid", private_uid=True)
    else:
        problem = _probe_namespaces()
        if problem is None:
            chosen = Isolation("namespaces", private_uid=is_root(), user_namespace=not is_root())
        elif requested == "namespaces" or is_root():
            raise IsolationError(
                f"cannot set up the grading sandbox (namespaces): {problem}. Grading untrusted code without "
                f"it is refused. Install bubblewrap (apt-get install bubblewrap) in a machine or container "
                f"that allows namespaces; or choose explicitly: --isolation uid (a private uid only: other "
                f"files and the network stay reachable) or --isolation none (trusted code only)")
        else:
            chosen = Isolation("none")
    _CHOSEN[requested] = chosen
    return chosen


def _probe_uid() -> None:
    """IsolationError unless a private uid can start this Python. (A capability to read every file
    would let it start a Python under /root, and read the staff's files too: refused.)"""
    if not shutil.which("setpriv"):
        raise IsolationError("setpriv (util-linux) is not installed")
    with UidLease() as lease:
        if _runs(setpriv_prefix(lease.uid)):
            return
    raise IsolationError(f"a private uid cannot run this Python ({sys.executable}): install it where every "
                         f"user may read it (chmod -R a+rX, as the Gradescope setup does), or use namespaces")


def _probe_namespaces():
    """None when a bubblewrap sandbox can run this Python here, else why not."""
    if not shutil.which("bwrap"):
        return "bubblewrap (bwrap) is not installed"
    if not shutil.which("setpriv") and is_root():
        return "setpriv (util-linux) is not installed"
    lease = UidLease() if is_root() else None
    try:
        isolation = Isolation("namespaces", private_uid=lease is not None, user_namespace=lease is None)
        prefix = bwrap_prefix(isolation, read_only=python_paths(), writable=[], cwd=Path("/tmp"),
                              uid=lease.uid if lease else None)
        return None if _runs(prefix) else "a test sandbox could not start (bwrap or setpriv failed)"
    finally:
        if lease:
            lease.close()


def _runs(prefix: list) -> bool:
    try:
        probe = subprocess.run(prefix + [sys.executable, "-s", "-c", "import sys; print(sys.base_prefix)"],
                               capture_output=True, text=True, timeout=60, cwd="/",
                               env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0 and probe.stdout.strip() == sys.base_prefix


# --- the bubblewrap sandbox -------------------------------------------------------------------

def python_paths() -> list:
    """What this Python needs to run: its installation and its virtual environment (never the rest of
    sys.path, which may hold the staff's source tree)."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent.parent}
    return sorted(p for p in paths if p.exists() and p != Path("/"))


def _system_binds() -> list:
    args = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for name in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(name):
            args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args += ["--ro-bind", name, name]
    return args


def empty_file() -> Path:
    """An empty regular file everyone may read (what a masked file reads as): made once per process."""
    if not _EMPTY:
        fd, name = tempfile.mkstemp(prefix="hw3-masked-")
        os.close(fd)
        os.chmod(name, 0o444)
        _EMPTY.append(Path(name))
        atexit.register(os.unlink, name)
    return _EMPTY[0]


_EMPTY = []


def empty_dir() -> Path:
    """An empty folder everyone may list and no one may write (what a masked folder reads as)."""
    if not _EMPTY_DIR:
        name = tempfile.mkdtemp(prefix="hw3-masked-")
        os.chmod(name, 0o555)
        _EMPTY_DIR.append(Path(name))
        atexit.register(os.rmdir, name)
    return _EMPTY_DIR[0]


_EMPTY_DIR = []


def bwrap_prefix(isolation: Isolation, *, read_only, writable, cwd: Path, uid: int = None, scratch: Path = None,
                 scratch_dirs=(), masked=(), gpu: bool = False) -> list:
    """argv prefix of a namespaces sandbox that sees only the system, ``read_only`` and ``writable``, and
    has ``scratch`` (with ``scratch_dirs`` in it) as a private size-limited tmpfs. Each of ``masked``
    (files or folders inside what is bound) reads as an empty file or an empty folder. ``gpu``: the
    NVIDIA device nodes too, and /sys read-only (CUDA finds its devices there)."""
    args = ["bwrap", "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net", "--unshare-ipc",
            "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    if isolation.user_namespace:
        args += ["--unshare-user"]
    args += _system_binds() + ["--proc", "/proc", "--dev", "/dev"]
    if gpu:  # after --dev, whose fresh /dev would hide them; --dev-bind: device nodes must stay usable
        args += ["--ro-bind", "/sys", "/sys"]
        for node in gpu_device_nodes():
            args += ["--dev-bind", str(node), str(node)]
    for folder, megabytes in TMPFS_MB.items():
        args += ["--perms", "1777", "--size", str(megabytes << 20), "--tmpfs", folder]
    covered, binds = {Path("/usr"), Path("/etc")}, []
    for path in sorted({Path(p) for p in read_only}, key=lambda p: len(p.parts)):
        if path.exists() and not any(parent in covered for parent in (path, *path.parents)):
            binds += ["--ro-bind", str(path), str(path)]
            covered.add(path)
    for path in writable:
        binds += ["--bind", str(path), str(path)]
    if scratch is not None:  # in memory, size-limited and gone with the sandbox: no disk to fill
        binds += ["--perms", "1777", "--size", str(SCRATCH_MB << 20), "--tmpfs", str(scratch)]
        for sub in scratch_dirs:
            binds += ["--perms", "1777", "--dir", str(Path(scratch) / sub)]
        writable = [*writable, scratch]
    # The folders leading to what is bound, made traversable (bwrap would copy a host mode such as
    # /root's 0700, which a private uid cannot pass), listing nothing but what is bound below them.
    ancestors = {parent for path in [*covered, *map(Path, writable)] for parent in path.parents}
    for folder in sorted(ancestors - {Path("/")} - set(map(Path, TMPFS_MB)), key=lambda p: len(p.parts)):
        if not any(parent in covered for parent in (folder, *folder.parents)):
            args += ["--perms", "0755", "--dir", str(folder)]
    args += binds
    folders = [Path(p) for p in masked if Path(p).is_dir()]
    for path in map(Path, masked):
        if any(folder in path.parents for folder in folders):
            continue           # inside a masked folder, which reads as empty: nothing to bind there
        if path.is_dir():
            args += ["--ro-bind", str(empty_dir()), str(path)]
        elif path.is_file():
            args += ["--ro-bind", str(empty_file()), str(path)]
    args += ["--chdir", str(cwd), "--"]
    if uid is not None:
        args += setpriv_prefix(uid)
    return args


def gpu_device_nodes(dev: Path = Path("/dev")) -> list:
    """The NVIDIA driver's device nodes a CUDA process opens (/dev/nvidiactl, /dev/nvidia0, ...,
    /dev/nvidia-uvm, and the /dev/nvidia-caps folder), those that exist."""
    return sorted(path for path in dev.glob("nvidia*") if path.is_char_device() or path.is_dir())


# --- process trees ----------------------------------------------------------------------------

def _proc_table() -> dict:
    """{pid: (ppid, cpu ticks incl. reaped children, start time)} of every process, from /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            table[int(entry)] = (int(fields[1]), sum(int(x) for x in fields[11:15]), int(fields[19]))
        except (OSError, ValueError, IndexError):
            continue
    return table


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds (user + system, reaped children included) of ``root`` and all its descendants."""
    table = _proc_table()
    children = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            total += table[pid][1]
            todo += children.get(pid, [])
    return total / CLOCK_TICKS


def allowed_cpus():
    """The cores this process may run on (grade-all gives each worker its own), or None."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def reap_children() -> None:
    """Reap every exited child (orphans reparented to us included) without blocking."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


_LIVE = set()   # pids of the sandboxed processes running now (several may run at once, in threads)


def kill_orphans(since: int, exclude=()) -> None:
    """Kill and reap the processes reparented to us (we are a subreaper) that were started at or after
    ``since`` (clock ticks), never a sandboxed process still being run (mode none only)."""
    me = os.getpid()
    for _ in range(50):
        orphans = [pid for pid, (ppid, _, start) in _proc_table().items()
                   if ppid == me and pid not in exclude and pid not in _LIVE and start >= since]
        if not orphans:
            return
        for pid in orphans:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)
        for pid in orphans:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


# --- the child --------------------------------------------------------------------------------

class Bounded:
    """Keeps the first ``head`` and last ``tail`` bytes of a stream, and counts the rest."""

    def __init__(self, head=16384, tail=16384):
        self.head, self.tail = bytearray(), bytearray()
        self.head_max, self.tail_max = head, tail
        self.total = 0

    def add(self, data: bytes):
        self.total += len(data)
        room = self.head_max - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data[-self.tail_max:]
            del self.tail[:-self.tail_max]

    def text(self) -> str:
        shown = len(self.head) + len(self.tail)
        cut = f"\n... [{self.total - shown} bytes cut] ...\n" if self.total > shown else ""
        return (bytes(self.head).decode(errors="replace") + cut + bytes(self.tail).decode(errors="replace"))


@dataclass
class Limits:
    memory_mb: int = 0          # RLIMIT_AS of each process, and (as root, where cgroups can be written) the
                                # memory of the whole tree, tmpfs files included; 0: none
    file_mb: int = 1024         # RLIMIT_FSIZE
    processes: int = None       # RLIMIT_NPROC with a private uid, and the tree's pids.max; None: PROCESSES
    address_space: bool = True  # memory_mb caps each process's RLIMIT_AS too (off on a GPU: CUDA maps terabytes)


@dataclass
class ChildResult:
    returncode: int = None
    killed: str = ""                  # why the grader killed it, if it did
    kind: str = ""                    # "budget" (the test's own CPU or wall budget) or "grader" (its limits)
    output: str = ""                  # bounded stdout+stderr
    output_bytes: int = 0
    bad_records: int = 0              # records that failed authentication, parsing or validation
    records: int = 0                  # authenticated records received (not kept: a child could flood them)
    cpu_seconds: float = 0.0          # of the whole process tree, at the last check
    leftovers: int = 0                # processes the uid sweep could not kill (should be 0)
    tree_limits: str = ""             # how the whole tree's memory and processes were capped

    def describe(self) -> str:
        if self.killed:
            return self.killed
        code = self.returncode
        if code is None:
            return "the test process did not finish"
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            hint = {"SIGKILL": " (killed: often the memory limit, or the grader's timeout)",
                    "SIGXFSZ": " (it wrote a file larger than the file-size limit)",
                    "SIGSEGV": " (a crash in native code)"}.get(name, "")
            return f"the test process was killed by signal {name}{hint}"
        return f"the test process exited with status {code}"


def _preexec(limits: Limits, private_uid: bool, group=None):
    memory = limits.memory_mb * 1024 * 1024
    file_size = limits.file_mb * 1024 * 1024
    processes = limits.processes or PROCESSES
    libc = _libc

    def apply():
        if group is not None:  # before anything else: every process the child starts is in the group
            group.enter()
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if memory and limits.address_space:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        if file_size:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
        if private_uid and processes:
            resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
        try:  # if memory runs out for real, the kernel kills the sandbox first, never the grader
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")
        except OSError:
            pass
        if libc is not None:
            libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    return apply


def _clock_ticks_now() -> int:
    """The current time in /proc's start-time unit (clock ticks since boot)."""
    try:
        with open("/proc/uptime") as f:
            return int(float(f.read().split()[0]) * CLOCK_TICKS) - 1
    except OSError:
        return 0


def parse_record(line: bytes, key: bytes):
    """The record (a dict) of one authenticated channel line, or None. Never raises."""
    try:
        mac, payload = line.split(b" ", 1)
        if not hmac.compare_digest(mac, hmac.new(key, payload, hashlib.sha256).hexdigest().encode()):
            return None
        record = json.loads(payload.decode("utf-8"))
    except Exception:  # noqa: BLE001 -- malformed in any way (bad UTF-8, deep nesting, ...): not a record
        return None
    return record if isinstance(record, dict) else None


@dataclass
class Sandbox:
    """Where a child runs: its isolation, the paths it may read and write, its uid (a lease)."""
    isolation: Isolation
    read_only: list = field(default_factory=list)
    writable: list = field(default_factory=list)
    uid: int = None
    scratch: Path = None          # the working folder: a private tmpfs with namespaces
    scratch_dirs: tuple = ()      # folders made inside it
    masked: tuple = ()            # files and folders it reads as empty (namespaces only): the judge's data
    gpu: bool = False             # namespaces: the NVIDIA device nodes and /sys (read-only) are visible

    def prefix(self, cwd: Path) -> list:
        if self.isolation.mode == "namespaces":
            return bwrap_prefix(self.isolation, read_only=[*python_paths(), *self.read_only],
                                writable=self.writable, cwd=cwd, uid=self.uid, scratch=self.scratch,
                                scratch_dirs=self.scratch_dirs, masked=self.masked, gpu=self.gpu)
        if self.isolation.mode == "uid":
            return setpriv_prefix(self.uid)
        return []


def run(argv, *, env, cwd, limits: Limits, sandbox: Sandbox, on_record=None, check=None,
        poll=0.5) -> ChildResult:
    """Run ``argv`` in ``sandbox`` until it exits or ``check(cpu_seconds)`` returns a reason to stop it
    (``(kind, message)``; called after every record and at least every ``poll`` seconds with the CPU
    seconds of the child's whole process tree). Each authenticated record (a dict) is passed to
    ``on_record``; a False return counts it as bad.

    The child receives ``KEY_FD,OUT_FD`` through the ``{channel}`` placeholder in argv.
    """
    key = secrets.token_bytes(32)
    key_r, key_w = os.pipe()
    chan_r, chan_w = os.pipe()
    os.write(key_w, key)
    os.close(key_w)
    argv = sandbox.prefix(Path(cwd)) + [a.replace("{channel}", f"{key_r},{chan_w}") for a in argv]
    result = ChildResult()
    out = Bounded()
    since = _clock_ticks_now()
    group = None
    if limits.memory_mb and is_root():
        from autograder.grade.cgroup import Cgroup
        group, why = Cgroup.create(f"hw3-{secrets.token_hex(6)}", limits.memory_mb << 20,
                                   limits.processes or PROCESSES, cpus=allowed_cpus())
        result.tree_limits = "a cgroup for the whole tree" if group else f"per process only: {why}"
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                cwd=cwd, env=env, pass_fds=(key_r, chan_w), start_new_session=True,
                                preexec_fn=_preexec(limits, sandbox.uid is not None, group))
    except BaseException:
        if group:
            group.close()
        raise
    finally:
        os.close(key_r)
        os.close(chan_w)
    _LIVE.add(proc.pid)
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ, "out")
    chan = os.fdopen(chan_r, "rb", buffering=0)
    selector.register(chan, selectors.EVENT_READ, "chan")
    pending = bytearray()
    expected_seq = 1
    open_streams = 2
    exited_at = None
    last_check = 0.0

    def handle(line: bytes):
        nonlocal expected_seq
        record = parse_record(line, key)
        if record is None or record.get("seq") != expected_seq:
            result.bad_records += 1
            return
        expected_seq += 1
        result.records += 1
        if on_record and on_record(record) is False:
            result.bad_records += 1

    def kill(reason=None):
        if reason and not result.killed:
            result.kind, result.killed = reason
        try:
            os.killpg(proc.pid, signal.SIGKILL)   # namespaces: bwrap, and with it the whole namespace
        except (ProcessLookupError, PermissionError):
            pass
        if sandbox.isolation.mode == "uid":
            result.leftovers = kill_uid(sandbox.uid)
        elif sandbox.isolation.mode == "none" and proc.poll() is not None:
            kill_orphans(since, exclude={proc.pid})

    try:
        while open_streams:
            now = time.monotonic()
            if exited_at is None and check and not result.killed and now - last_check >= poll / 2:
                last_check = now
                # the largest reading: a process exiting and being reaped can momentarily drop out of the
                # tree, and children reaped by the kernel (SIGCHLD ignored) only show in the cgroup's count
                readings = [result.cpu_seconds, tree_cpu_seconds(proc.pid), group.cpu_seconds() if group else None]
                result.cpu_seconds = max(r for r in readings if r is not None)
                reason = check(result.cpu_seconds)
                if reason:
                    kill(reason)
                    exited_at = now
            if exited_at is None and proc.poll() is not None:
                exited_at = now
                kill()  # leftover processes of the sandbox (daemons) hold the pipes open
            if exited_at is not None and now - exited_at > 5:
                break
            for key_, _ in selector.select(poll):
                data = os.read(key_.fileobj.fileno(), 65536)
                if not data:
                    selector.unregister(key_.fileobj)
                    open_streams -= 1
                    continue
                if key_.data == "out":
                    out.add(data)
                    continue
                pending.extend(data)
                while (newline := pending.find(b"\n")) >= 0:
                    line = bytes(pending[:newline])
                    del pending[:newline + 1]
                    handle(line)
                if len(pending) > MAX_RECORD:
                    result.bad_records += 1
                    pending.clear()
    finally:
        kill()
        proc.wait()
        _LIVE.discard(proc.pid)
        if group:
            group.close()
        if sandbox.isolation.mode == "uid":
            remove_files_of_uid(sandbox.uid)
        elif sandbox.isolation.mode == "none":
            kill_orphans(since, exclude={proc.pid})
        selector.close()
        proc.stdout.close()
        chan.close()
    result.returncode = proc.returncode
    result.output = out.text()
    result.output_bytes = out.total
    return result


if __name__ == "__main__":  # `python -m autograder.grade.sandbox [MODE]`: what grading would use here
    try:
        print(f"isolation available: {choose(sys.argv[1] if len(sys.argv) > 1 else 'auto').describe()}")
    except IsolationError as error:
        print(f"isolation unavailable: {error}")
        sys.exit(1)
