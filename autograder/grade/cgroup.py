"""A control group per test process: a memory and a process limit on its whole tree, not per process.

The kernel charges every page the tree uses (its tmpfs files included) to the group, and refuses a
fork past ``pids.max``. cgroup v2 (a unified hierarchy with the memory and pids controllers delegated
to us) and cgroup v1 (separate memory and pids hierarchies) are both handled; where neither can be
written (a container with a read-only /sys/fs/cgroup) ``create`` says why and grading goes on with the
per-process limits alone, as the grader's log states.
"""
import os
import signal
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


def _own_paths() -> dict:
    """{controller or "": our group's path} from /proc/self/cgroup ("" is the v2 hierarchy)."""
    paths = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def _writable_group(folder: Path) -> bool:
    return folder.is_dir() and os.access(folder, os.W_OK)


class Cgroup:
    """One group (v2) or a pair of groups (v1 memory and pids) holding a test process's tree."""

    def __init__(self, folders: list, limits: dict):
        self.folders = folders
        for (folder, name), value in limits.items():
            (folder / name).write_text(str(value))

    @classmethod
    def create(cls, name: str, memory_bytes: int, pids: int):
        """(Cgroup, "") or (None, why not)."""
        own = _own_paths()
        unified = ROOT if (ROOT / "cgroup.controllers").is_file() else ROOT / "unified"
        try:
            if "" in own and (unified / own[""].lstrip("/") / "cgroup.controllers").is_file():
                parent = unified / own[""].lstrip("/")
                available = (parent / "cgroup.subtree_control").read_text().split()
                if {"memory", "pids"} <= set(available) and _writable_group(parent):
                    folder = parent / name
                    folder.mkdir()
                    return cls([folder], {(folder, "memory.max"): memory_bytes, (folder, "memory.swap.max"): 0,
                                          (folder, "pids.max"): pids}), ""
            if "memory" in own and "pids" in own:
                memory = ROOT / "memory" / own["memory"].lstrip("/")
                pid_root = ROOT / "pids" / own["pids"].lstrip("/")
                if _writable_group(memory) and _writable_group(pid_root):
                    folders = [memory / name, pid_root / name]
                    for folder in folders:
                        folder.mkdir()
                    return cls(folders, {(folders[0], "memory.limit_in_bytes"): memory_bytes,
                                         (folders[1], "pids.max"): pids}), ""
        except OSError as error:
            return None, f"cgroups not writable here ({error.strerror or error})"
        return None, "no writable cgroup with the memory and pids controllers"

    def enter(self) -> None:
        """Move the calling process into the group (run in the child between fork and exec)."""
        for folder in self.folders:
            with open(folder / "cgroup.procs", "w") as f:
                f.write(str(os.getpid()))

    def pids(self) -> list:
        found = set()
        for folder in self.folders:
            try:
                found |= {int(p) for p in (folder / "cgroup.procs").read_text().split()}
            except OSError:
                pass
        return sorted(found)

    def close(self, within: float = 5.0) -> None:
        """Kill whatever is left in the group, then remove it."""
        stop = time.monotonic() + within
        while (pids := self.pids()) and time.monotonic() < stop:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.02)
        for folder in self.folders:
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:   # busy until the last task is reaped
                    time.sleep(0.02)
