"""A control group per test process: a memory and a process limit on its whole tree, not per process,
its CPU time (every process it ever ran, reaped or not), and the cores it may use.

The kernel charges every page the tree uses (its tmpfs files included) to the group, refuses a fork
past ``pids.max``, counts CPU time in cpuacct/cpu.stat whatever the processes do with SIGCHLD, and
keeps them on the group's cpuset whatever they ask of sched_setaffinity. cgroup v2 (a unified hierarchy with the memory and pids controllers delegated
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
    """One group (v2) or a set of groups (v1: memory, pids, and cpuacct and cpuset where writable)
    holding a test process's tree."""

    def __init__(self, folders: list, settings: list, cpu_file: Path = None, cpu_unit: float = 1e-9):
        self.folders, self.cpu_file, self.cpu_unit = folders, cpu_file, cpu_unit
        for path, value in settings:   # in order: a v1 cpuset needs its cpus and mems before any task
            path.write_text(str(value))

    @classmethod
    def create(cls, name: str, memory_bytes: int, pids: int, cpus=None):
        """(Cgroup, "") or (None, why not). ``cpus``: the cores the tree may run on (None: any)."""
        own = _own_paths()
        unified = ROOT if (ROOT / "cgroup.controllers").is_file() else ROOT / "unified"
        cpu_list = ",".join(map(str, sorted(cpus))) if cpus else None
        folders = []
        try:
            if "" in own and (unified / own[""].lstrip("/") / "cgroup.controllers").is_file():
                parent = unified / own[""].lstrip("/")
                available = set((parent / "cgroup.subtree_control").read_text().split())
                if {"memory", "pids"} <= available and _writable_group(parent):
                    folder = parent / name
                    folder.mkdir()
                    folders.append(folder)
                    settings = [(folder / "memory.max", memory_bytes), (folder / "memory.swap.max", 0),
                                (folder / "pids.max", pids)]
                    if cpu_list and "cpuset" in available:
                        settings.append((folder / "cpuset.cpus", cpu_list))
                    return cls(folders, settings, folder / "cpu.stat", 1e-6), ""
            if "memory" in own and "pids" in own:
                def group(controller):
                    folder = ROOT / controller / own.get(controller, "/").lstrip("/") / name
                    folder.mkdir()
                    folders.append(folder)
                    return folder
                if not all(_writable_group(ROOT / c / own[c].lstrip("/")) for c in ("memory", "pids")):
                    return None, "no writable cgroup with the memory and pids controllers"
                memory, pid_group = group("memory"), group("pids")
                settings = [(memory / "memory.limit_in_bytes", memory_bytes), (pid_group / "pids.max", pids)]
                cpu_file = None
                if "cpuacct" in own and _writable_group(ROOT / "cpuacct" / own["cpuacct"].lstrip("/")):
                    cpu_file = group("cpuacct") / "cpuacct.usage"
                if cpu_list and "cpuset" in own and _writable_group(ROOT / "cpuset" / own["cpuset"].lstrip("/")):
                    cpuset = group("cpuset")
                    settings += [(cpuset / "cpuset.cpus", cpu_list),
                                 (cpuset / "cpuset.mems", (cpuset.parent / "cpuset.mems").read_text().strip())]
                return cls(folders, settings, cpu_file), ""
        except OSError as error:
            for folder in folders:
                try:
                    folder.rmdir()
                except OSError:
                    pass
            return None, f"cgroups not writable here ({error.strerror or error})"
        return None, "no writable cgroup with the memory and pids controllers"

    def cpu_seconds(self):
        """CPU seconds of every process the group ever held, or None where not counted."""
        if self.cpu_file is None:
            return None
        try:
            text = self.cpu_file.read_text()
        except OSError:
            return None
        if self.cpu_file.name == "cpu.stat":
            fields = dict(line.split() for line in text.splitlines() if line.strip())
            return int(fields.get("usage_usec", 0)) * self.cpu_unit
        return int(text.strip() or 0) * self.cpu_unit

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
