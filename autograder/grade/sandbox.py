"""Running untrusted code in a child process: limits, an unprivileged uid, deadlines, a bounded output
buffer, an authenticated record channel, and leaving nothing behind.

What this gives (see autograder/README.md for the threat model):
  * its own session and process group; resource limits: address space (memory), file size, no
    core dumps, a process count (with a private uid); first in line for the kernel's OOM killer;
    no new privileges; killed if the grader dies;
  * when the grader runs as root (Gradescope, a container): a fresh uid/gid of its own, not in any
    group, so it cannot signal or trace the grader or other problems' processes, nor write the
    grader's files (results included) or other problems' scratch folders;
  * a watchdog: the caller's deadline is checked at least every half second; past it the whole
    process group -- and every process of the private uid, or every orphan reparented to the
    grader -- is killed;
  * output kept to a bounded head and tail however much is printed;
  * records read from a pipe, each one's HMAC checked against a key the child reads once.
"""
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
import time
from dataclasses import dataclass
from pathlib import Path

UID_BASE = int(os.environ.get("HW3_GRADER_UID_BASE", 2_100_000_000))
UID_POOL = 4096
LOCK_DIR = Path(os.environ.get("HW3_GRADER_LOCK_DIR", "/tmp/hw3-autograder-uids"))
MAX_RECORD = 1 << 20          # a record line longer than this is a protocol violation
PROCESSES = 512               # default RLIMIT_NPROC of a private uid (processes and threads)
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER = 1, 38, 36

try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # not Linux
    _libc = None


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def become_subreaper() -> bool:
    """Orphans of our children (daemons, double forks) get reparented to us, not to init, so we can
    find and kill them."""
    return bool(_libc) and _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


class UidLease:
    """A uid (and gid of the same number) nobody else is using, held through a lock file until closed."""

    def __init__(self):
        LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
        info = LOCK_DIR.lstat()
        if info.st_uid != 0 or info.st_mode & 0o077 or not LOCK_DIR.is_dir() or LOCK_DIR.is_symlink():
            raise RuntimeError(f"{LOCK_DIR} must be a folder owned by root with mode 0700")
        start = secrets.randbelow(UID_POOL)
        for i in range(UID_POOL):
            uid = UID_BASE + (start + i) % UID_POOL
            fd = os.open(LOCK_DIR / f"{uid}.lock", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.uid, self._fd = uid, fd
            return
        raise RuntimeError(f"no free sandbox uid in [{UID_BASE}, {UID_BASE + UID_POOL})")

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def kill_uid(uid: int) -> None:
    """SIGKILL every process running as ``uid``: a helper that becomes ``uid`` calls kill(-1), which
    reaches exactly the processes that uid may signal (its own)."""
    code = ("import os, signal\nfor _ in range(3):\n    try:\n        os.kill(-1, signal.SIGKILL)\n"
            "    except ProcessLookupError:\n        break\n")
    subprocess.run(setpriv_prefix(uid, private_uid_mode()) + [sys.executable, "-S", "-c", code],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=60, cwd="/", env={})


_SETPRIV = {}


def setpriv_prefix(uid: int, caps: str = None) -> list:
    """argv prefix that runs a command as ``uid``/``uid`` with no supplementary groups, no new privileges,
    and no capabilities except ``caps`` (e.g. "dac_read_search") kept as ambient capabilities."""
    keep = f",+{caps}" if caps else ""
    prefix = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--nnp",
              f"--bounding-set=-all{keep}", f"--inh-caps=-all{keep}"]
    if caps:
        prefix.append(f"--ambient-caps=-all{keep}")
    if _SETPRIV.get("pdeathsig"):
        prefix.append("--pdeathsig=KILL")
    return prefix + ["--"]


def private_uid_mode():
    """How sandboxed processes get a private uid here: None (not root, or setpriv missing or unable to
    run our Python as another user), "" (plain), or "dac_read_search" (this Python installation is not
    readable by other users, e.g. pyenv under /root: the sandbox keeps read access to files, nothing
    else). Probed once per process."""
    if "mode" in _SETPRIV:
        return _SETPRIV["mode"]
    _SETPRIV["mode"] = None
    if not is_root() or not shutil.which("setpriv"):
        return None
    try:
        help_text = subprocess.run(["setpriv", "--help"], capture_output=True, text=True, timeout=30).stdout
        _SETPRIV["pdeathsig"] = "--pdeathsig" in help_text
        with UidLease() as lease:
            for caps in ("", "dac_read_search"):
                probe = subprocess.run(setpriv_prefix(lease.uid, caps) + [sys.executable, "-s", "-c",
                                       "import sys; print(sys.base_prefix)"], capture_output=True, text=True,
                                       timeout=60, cwd="/", env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
                if probe.returncode == 0 and probe.stdout.strip() == sys.base_prefix:
                    _SETPRIV["mode"] = caps
                    break
    except (OSError, subprocess.SubprocessError, RuntimeError):
        pass
    return _SETPRIV["mode"]


def _proc_children():
    """[(pid, uid, start time)] of our direct children, read from /proc."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) != me:
                continue
            with open(f"/proc/{entry}/status") as f:
                uid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
            found.append((int(entry), uid, int(fields[19])))
        except (OSError, ValueError, IndexError, StopIteration):
            continue
    return found


_LIVE = set()   # pids of the sandboxed processes running now (several may run at once, in threads)


def kill_orphans(uid=None, since=None, exclude=()) -> None:
    """Kill and reap the processes reparented to us (we are a subreaper) that belong to a sandbox:
    those running as ``uid``, or without a uid those started at or after ``since`` (clock ticks),
    never a sandboxed process still being run."""
    if not os.path.isdir("/proc"):
        return
    for _ in range(20):
        orphans = [pid for pid, puid, start in _proc_children()
                   if pid not in exclude and pid not in _LIVE
                   and (puid == uid if uid is not None else since is not None and start >= since)]
        if not orphans:
            return
        for pid in orphans:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
        for pid in orphans:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


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
            self.tail += data
            del self.tail[:-self.tail_max]

    def text(self) -> str:
        shown = len(self.head) + len(self.tail)
        cut = f"\n... [{self.total - shown} bytes cut] ...\n" if self.total > shown else ""
        return (bytes(self.head).decode(errors="replace") + cut + bytes(self.tail).decode(errors="replace"))


@dataclass
class Limits:
    memory_mb: int = 0          # RLIMIT_AS; 0: none
    file_mb: int = 1024         # RLIMIT_FSIZE
    processes: int = None       # RLIMIT_NPROC, only with a private uid (it counts per uid); None: PROCESSES


@dataclass
class ChildResult:
    returncode: int = None
    killed: str = ""                  # why the grader killed it, if it did
    output: str = ""                  # bounded stdout+stderr
    output_bytes: int = 0
    bad_records: int = 0              # records that failed authentication or parsing
    records: int = 0                  # authenticated records received (not kept: a child could flood them)

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


def _preexec(limits: Limits, private_uid: bool):
    memory = limits.memory_mb * 1024 * 1024
    file_size = limits.file_mb * 1024 * 1024
    processes = limits.processes or PROCESSES
    libc = _libc

    def apply():
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if memory:
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
            return int(float(f.read().split()[0]) * os.sysconf("SC_CLK_TCK")) - 1
    except OSError:
        return None


def run(argv, *, env, cwd, limits: Limits, uid=None, on_record=None, deadline=None, poll=0.5) -> ChildResult:
    """Run ``argv`` sandboxed until it exits or ``deadline()`` (a time.monotonic() value, re-read after
    every record) passes. Each authenticated record (a dict) is passed to ``on_record`` as it arrives.

    The child receives ``--hw3-channel KEY_FD,OUT_FD``-style fds through the ``{channel}`` placeholder
    in argv.
    """
    key = secrets.token_bytes(32)
    key_r, key_w = os.pipe()
    chan_r, chan_w = os.pipe()
    os.write(key_w, key)
    os.close(key_w)
    argv = [a.replace("{channel}", f"{key_r},{chan_w}") for a in argv]
    result = ChildResult()
    out = Bounded()
    since = _clock_ticks_now()
    if uid is not None:
        argv = setpriv_prefix(uid, private_uid_mode()) + argv
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                cwd=cwd, env=env, pass_fds=(key_r, chan_w), start_new_session=True,
                                preexec_fn=_preexec(limits, uid is not None))
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

    def handle(line: bytes):
        nonlocal expected_seq
        try:
            mac, payload = line.decode().split(" ", 1)
            good = hmac.compare_digest(mac, hmac.new(key, payload.encode(), hashlib.sha256).hexdigest())
            record = json.loads(payload) if good else None
        except (ValueError, UnicodeDecodeError):
            record = None
        if not isinstance(record, dict) or record.get("seq") != expected_seq:
            result.bad_records += 1
            return
        expected_seq += 1
        result.records += 1
        if on_record:
            on_record(record)

    def kill(reason=""):
        if reason and not result.killed:
            result.killed = reason
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if uid is not None:
            kill_uid(uid)
        elif proc.poll() is not None:
            kill_orphans(since=since, exclude={proc.pid})

    try:
        while open_streams:
            now = time.monotonic()
            limit = deadline() if deadline else None
            if limit is not None and now > limit and not result.killed:
                kill("the grader stopped the test process: time limit exceeded")
                exited_at = exited_at or now
            if exited_at is None and proc.poll() is not None:
                exited_at = now
                kill()  # leftover processes of the sandbox (daemons) hold the pipes open
            if exited_at is not None and now - exited_at > 5:
                break
            timeout = poll if limit is None else max(0.0, min(poll, limit - now))
            for key_, _ in selector.select(timeout):
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
        kill_orphans(uid=uid, since=None if uid is not None else since, exclude={proc.pid})
        selector.close()
        proc.stdout.close()
        chan.close()
    result.returncode = proc.returncode
    result.output = out.text()
    result.output_bytes = out.total
    return result
