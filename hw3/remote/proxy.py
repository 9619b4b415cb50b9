"""The judge's side: a student module used through a worker process, as if imported.

    gan = RemoteModule("gan", "starter")
    noise = gan.sample_noise(64, 96)        # a call in the worker; a plain tensor comes back
    D = gan.build_discriminator()           # a model comes back as a RemoteHandle
    logits = D(noise_images)                # forward in the worker
    D.structure(), D.state_dict(), D.backward([x], grad_output)

Only plain data (:mod:`hw3.remote.codec`) comes back, checked here. The judge's torch RNG state
goes to the worker before each request, so the student's code draws what it would draw in-process
after the same seeding; after the request the judge's stream moves on to a state drawn from the one
it sent, never to the worker's (which the student's code chooses). What the student printed is written to this
process's stdout (where pytest captures it). An exception in the student's code is raised here
as StudentError; a worker that dies or stops answering raises StudentError too, and the next
request starts a new worker (whose handles are new: older ones then raise RemoteError).

One module (over 400 lines) on purpose: it is the judge's whole half of the security boundary -- the
worker's process, every request, and every check on what comes back -- so an audit reads it top to
bottom; the wire format is already apart, in :mod:`hw3.remote.codec`.
"""
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import weakref

import torch

from hw3 import REPO_ROOT, impl
from hw3.remote import PREFIX_ENV, THREAD_POLICY, codec
from hw3.remote.codec import HANDLE_KEY, RemoteError

DEFAULT_TIMEOUT = 300.0      # seconds one request may take
START_TIMEOUT = 120.0        # seconds the worker may take to import torch and the student's file
OUTPUT_CHARS = 20_000        # of the student's output written here per response
DIED_OUTPUT_CHARS = 4_000    # of the output left by a worker that died, named in the error


class StudentError(Exception):
    """The student's code raised (``kind`` is its exception's type name), or its worker died or
    timed out (``kind`` empty). str(): "TypeName: message", then the traceback in the student's file."""

    def __init__(self, kind: str, message: str, traceback: str = ""):
        self.kind, self.message, self.traceback = kind, message, traceback
        head = f"{kind}: {message}" if kind else message
        super().__init__(head + (f"\n{traceback.rstrip()}" if traceback else ""))


class StudentAttributeError(StudentError, AttributeError):
    """The student's module or object has no such attribute (so hasattr() works on a proxy)."""


def default_launcher(argv: list) -> list:
    """The grader's sandbox prefix when it set one ($HW3_WORKER_PREFIX), else a plain subprocess."""
    prefix = os.environ.get(PREFIX_ENV)
    if not prefix:
        return argv
    words = json.loads(prefix)
    if type(words) is not list or not all(type(w) is str for w in words):
        raise RemoteError(f"${PREFIX_ENV} is not a JSON list of strings")
    return words + argv


def worker_env() -> dict:
    """This environment, with the hw3 package first on the worker's import path and torch's threads
    waiting as THREAD_POLICY says (unless this environment says otherwise)."""
    env = {**THREAD_POLICY, **os.environ}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def exit_description(code) -> str:
    if code is None:
        return "it stopped answering"
    if code < 0:
        try:
            return f"killed by signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


# --- one worker process -----------------------------------------------------------------------

class _Process:
    """A running worker: its pipes, and the file that holds what it printed."""

    def __init__(self, argv: list, cwd):
        self.capture = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.capture,
                                     cwd=cwd, env=worker_env(), start_new_session=True, bufsize=0)
        self.to_worker, self.from_worker = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        os.set_blocking(self.to_worker, False)
        os.set_blocking(self.from_worker, False)

    def send(self, data: bytes, deadline: float) -> None:
        view = memoryview(codec.frame(data))
        while view:
            self.wait_for(self.to_worker, deadline, write=True)
            try:
                view = view[os.write(self.to_worker, view):]
            except BlockingIOError:
                continue

    def receive(self, deadline: float) -> bytes:
        (length,) = codec.HEADER.unpack(self.read_exactly(codec.HEADER.size, deadline))
        if length > codec.MAX_MESSAGE_BYTES:
            raise RemoteError(f"the worker sent a response of {length:,} bytes, over the limit of "
                              f"{codec.MAX_MESSAGE_BYTES:,}")
        return self.read_exactly(length, deadline)

    def read_exactly(self, count: int, deadline: float) -> bytes:
        chunks, left = [], count
        while left:
            self.wait_for(self.from_worker, deadline)
            try:
                chunk = os.read(self.from_worker, min(left, 1 << 20))
            except BlockingIOError:
                continue
            if not chunk:
                raise BrokenPipeError("the worker closed its response stream")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    @staticmethod
    def wait_for(fd: int, deadline: float, write: bool = False) -> None:
        left = deadline - time.monotonic()
        ready = select.select([], [fd], [], max(left, 0))[1] if write else select.select([fd], [], [], max(left, 0))[0]
        if not ready:
            raise TimeoutError

    def leftover_output(self) -> str:
        """The end of what the worker printed since its last response (it empties the file)."""
        size = os.fstat(self.capture.fileno()).st_size
        start = max(0, size - DIED_OUTPUT_CHARS)
        return os.pread(self.capture.fileno(), size - start, start).decode("utf-8", errors="backslashreplace")

    def stop(self) -> int:
        """Kill the worker and everything it started; its exit status."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        code = self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.capture):
            stream.close()
        return code


# --- the proxies ------------------------------------------------------------------------------

class RemoteModule:
    """Student module ``name`` (e.g. "gan") from ``impl_folder``, run in a worker process.

    Attribute access sends requests: a function comes back as a RemoteFunction, a constant as its
    value. ``launcher(argv) -> argv`` may wrap the worker's command (a sandbox prefix).
    """

    def __init__(self, name: str, impl_folder=None, launcher=None, *, timeout: float = DEFAULT_TIMEOUT,
                 sync_rng: bool = True, threads: int = None, cwd=None):
        self._name = name
        self._file = impl.impl_dir(impl_folder) / f"{name}.py"
        self._launcher = launcher or default_launcher
        self._timeout, self._sync_rng, self._cwd = timeout, sync_rng, cwd
        self._threads = threads if threads is not None else torch.get_num_threads()
        self._process = None
        self._generation = 0
        self._handles = weakref.WeakValueDictionary()   # handle id -> the one RemoteHandle for it
        self._released = []                             # ids to release with the next request
        self._sent_rng = None                           # the judge's RNG state sent with the last request
        self.last_output = ""

    def __repr__(self):
        return f"<RemoteModule {self._name} from {self._file}>"

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return self._attribute(None, name, f"{self._name}.{name}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        """Stop the worker (the next request starts a new one)."""
        if self._process is not None:
            self._process.stop()
            self._process = None

    def call(self, name: str, *args, **kwargs):
        """``name(*args, **kwargs)`` in the worker (for names this object's attributes hide)."""
        return self._request({"op": "call", "handle": None, "name": name, "args": args, "kwargs": kwargs},
                             f"{self._name}.{name}")

    def construct(self, name: str, *args, **kwargs) -> "RemoteHandle":
        """``name(*args, **kwargs)`` in the worker, whatever it returns kept there as a handle."""
        return self._request({"op": "construct", "handle": None, "name": name, "args": args, "kwargs": kwargs},
                             f"{self._name}.{name}")

    def provided(self, name: str, *args, **kwargs):
        """``name(student_module, *args, **kwargs)`` in the worker, for a public function ``name`` of
        the provided package ("hw3.cnn_experiment.train_convnet"): code that must run beside the
        student's (training loops, probes). What it returns is the worker's word: check it."""
        return self._request({"op": "provided", "name": name, "args": args, "kwargs": kwargs},
                             f"{name} on {self._file.name}")

    def get_rng_state(self) -> torch.Tensor:
        """The worker's torch RNG state (after it took the judge's, when sync_rng is on)."""
        return self._request({"op": "rng"}, "the worker's RNG state")

    @contextlib.contextmanager
    def time_limit(self, seconds: float):
        """Each request made inside may take up to ``seconds`` (a training run longer than the
        default limit): ``with module.time_limit(900): module.provided(...)``."""
        saved, self._timeout = self._timeout, float(seconds)
        try:
            yield self
        finally:
            self._timeout = saved

    # Requests ----------------------------------------------------------------------------------

    def _attribute(self, handle, name: str, label: str, owner=None):
        try:
            reply = self._request({"op": "getattr", "handle": handle, "name": name}, label)
        except StudentError as error:
            if error.kind != "AttributeError":
                raise
            raise StudentAttributeError(error.kind, error.message, error.traceback) from None
        if type(reply) is not dict or type(reply.get("callable")) is not bool:
            raise RemoteError(f"{label}: the worker sent a malformed attribute")
        if reply["callable"]:
            return RemoteFunction(self, handle, name, label, owner)
        return reply.get("value")

    def _request(self, request: dict, label: str):
        """Send ``request`` (handles in it as references), return the decoded value or raise."""
        process = self._started()
        request = dict(request, release=self._released, args=self._references(request.get("args", ())),
                       kwargs=self._references(request.get("kwargs", {})))
        self._released = []
        if self._sync_rng:
            request["rng"] = self._sent_rng = torch.get_rng_state()
        data = codec.encode(request, f"the request for {label}")
        deadline = time.monotonic() + self._timeout
        try:
            process.send(data, deadline)
            response = codec.decode(process.receive(deadline), f"the response to {label}")
        except (OSError, TimeoutError, RemoteError) as error:
            raise self._lost(label, error) from None
        except BaseException:  # interrupted (pytest-timeout, Ctrl-C): its late reply must not answer the next
            self.close()
            raise
        return self._parsed(response, label)

    def _started(self) -> _Process:
        if self._process is not None:
            return self._process
        argv = self._launcher([sys.executable, "-m", "hw3.remote.worker", "--impl-file", str(self._file),
                               "--module", self._name, "--threads", str(self._threads)])
        process = _Process(argv, self._cwd)
        self._process, self._generation = process, self._generation + 1
        self._handles.clear()
        self._released = []
        label = f"importing {self._file.name}"
        try:
            response = codec.decode(process.receive(time.monotonic() + START_TIMEOUT), f"the response to {label}")
        except (OSError, TimeoutError, RemoteError) as error:
            raise self._lost(label, error, START_TIMEOUT) from None
        except BaseException:  # interrupted: a half-started worker is not kept
            self.close()
            raise
        try:
            self._parsed(response, label, rng=False)
        except StudentError:
            self.close()  # the next request tries again, with a fresh process
            raise
        return process

    def _lost(self, label: str, error: Exception, seconds: float = None) -> Exception:
        """The error for a worker that died, hung or broke the protocol; it is stopped."""
        process, self._process = self._process, None
        if isinstance(error, TimeoutError):
            process.stop()
            seconds = seconds or self._timeout
            return StudentError("", f"{label} did not answer within {seconds:g} s: the worker was stopped")
        output = process.leftover_output()
        code = process.stop()
        if isinstance(error, RemoteError):
            return RemoteError(f"{error} (the worker was stopped)")
        tail = f"; the end of its output:\n{output}" if output.strip() else ""
        return StudentError("", f"the worker process died: {exit_description(code)} during {label}{tail}")

    def _parsed(self, response, label: str, rng: bool = True):
        if type(response) is not dict or type(response.get("ok")) is not bool:
            raise RemoteError(f"{label}: the worker sent a malformed response")
        self._show_output(response.get("output"))
        if rng and self._sync_rng:
            self._take_rng(response.get("rng"), label)
        if response["ok"]:
            return self._handles_in(response.get("value"))
        raise error_from(response.get("error"), label)

    def _show_output(self, output) -> None:
        if type(output) is str and output:
            self.last_output = output[:OUTPUT_CHARS]
            sys.stdout.write(self.last_output if self.last_output.endswith("\n") else self.last_output + "\n")

    def _take_rng(self, state, label: str) -> None:
        """After a request that drew random numbers (or seeded) in the worker, move the judge's stream
        on: to a seed drawn from the state it sent, the same every run; after one that did not, leave
        it. Never to the worker's state: the student's code sets that to anything (a Mersenne Twister
        of zeros makes every later torch.rand and torch.randn of the test exactly 0, and any state
        fixes the next 624 draws), and the test's later inputs would be the student's choice."""
        reference = torch.get_rng_state()
        if type(state) is not torch.Tensor or state.dtype != reference.dtype or state.shape != reference.shape:
            raise RemoteError(f"{label}: the worker sent no valid RNG state")
        if torch.equal(state, self._sent_rng):
            return
        generator = torch.Generator()
        generator.set_state(self._sent_rng)
        torch.manual_seed(int(torch.randint(0, 2 ** 62, (1,), generator=generator)))

    # Handles -----------------------------------------------------------------------------------

    def _references(self, value):
        """Arguments with each RemoteHandle replaced by its reference in the worker."""
        if isinstance(value, RemoteHandle):
            return {HANDLE_KEY: self._live_id(value)}
        if type(value) in (list, tuple):
            return type(value)(self._references(v) for v in value)
        if type(value) is dict:
            return {k: self._references(v) for k, v in value.items()}
        return value

    def _live_id(self, handle: "RemoteHandle") -> int:
        if handle._remote is not self or handle._generation != self._generation:
            raise RemoteError(f"{handle!r} belongs to a worker that has stopped since: build it again")
        return handle._id

    def _handles_in(self, value):
        """A decoded value with each handle reference replaced by its RemoteHandle."""
        if type(value) is dict and set(value) == {HANDLE_KEY, "class", "module"} and type(value[HANDLE_KEY]) is int:
            return self._handle(value[HANDLE_KEY], str(value["class"]), str(value["module"]))
        if type(value) in (list, tuple):
            return type(value)(self._handles_in(v) for v in value)
        if type(value) is dict:
            return {k: self._handles_in(v) for k, v in value.items()}
        return value

    def _handle(self, handle_id: int, cls: str, module: str) -> "RemoteHandle":
        handle = self._handles.get(handle_id)
        if handle is None:
            if handle_id in self._released:
                self._released.remove(handle_id)  # handed out again before its release was sent
            handle = self._handles[handle_id] = RemoteHandle(self, handle_id, cls, module)
        return handle

    def _release(self, handle: "RemoteHandle") -> None:
        if handle._generation == self._generation and self._process is not None:
            self._released.append(handle._id)


def error_from(error, label: str) -> Exception:
    """The judge-side exception for an error response."""
    fields = ("origin", "type", "message", "traceback")
    if type(error) is not dict or not all(type(error.get(k)) is str for k in fields):
        return RemoteError(f"{label}: the worker sent a malformed error")
    if error["origin"] == "student":
        return StudentError(error["type"], error["message"], error["traceback"])
    return RemoteError(f"{label}: {error['message']}" if error["origin"] == "boundary"
                       else f"{label}: the worker failed ({error['type']}: {error['message']})")


class RemoteFunction:
    """A function of the student module, or a method of a handle, called in the worker. A method keeps
    its handle alive (``build().double()``: the model must not be released before the call)."""

    def __init__(self, remote: RemoteModule, handle, name: str, label: str, owner=None):
        self._remote, self._handle, self._name, self._label = remote, handle, name, label
        self._owner = owner

    def __repr__(self):
        return f"<remote {self._label}>"

    def __call__(self, *args, **kwargs):
        return self._remote._request({"op": "call", "handle": self._handle, "name": self._name,
                                      "args": args, "kwargs": kwargs}, self._label)

    def backward(self, inputs, grad_output, **kwargs) -> dict:
        """Call with ``inputs`` in the worker, backpropagate ``grad_output`` from the output: a dict
        of "output", "input_grads" (one per input, None for non-tensors) and "parameter_grads"."""
        return self._remote._request({"op": "backward", "handle": self._handle, "name": self._name,
                                      "args": list(inputs), "kwargs": kwargs, "grad_output": grad_output},
                                     f"{self._label} (backward)")


class RemoteHandle:
    """An object (a model, an optimizer) that lives in the worker: ``handle(x)`` runs its forward
    there; other attributes are fetched or called there (a submodule is a handle, a tensor a copy)."""

    def __init__(self, remote: RemoteModule, handle_id: int, cls: str, module: str):
        self._remote, self._id, self._generation = remote, handle_id, remote._generation
        self.remote_class, self.remote_module = cls, module

    def __repr__(self):
        return f"<RemoteHandle {self.remote_class} #{self._id} in the {self._remote._name} worker>"

    def __del__(self):
        try:
            self._remote._release(self)
        except Exception:  # interpreter shutdown: nothing to release
            pass

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return self._remote._attribute(self._live(), name, f"{self.remote_class}.{name}", owner=self)

    def _live(self) -> int:
        return self._remote._live_id(self)

    def _ask(self, op: str, label: str, **fields):
        return self._remote._request({"op": op, "handle": self._live(), **fields}, f"{self.remote_class}.{label}")

    def __call__(self, *args, **kwargs):
        return self._ask("call", "forward", name="__call__", args=args, kwargs=kwargs)

    def __getitem__(self, key):
        return self._ask("call", f"[{key!r}]", name="__getitem__", args=(key,))

    def __len__(self) -> int:
        return self._ask("call", "__len__", name="__len__")

    def train(self, mode: bool = True) -> "RemoteHandle":
        return self._ask("call", "train", name="train", args=(mode,))

    def eval(self) -> "RemoteHandle":
        return self._ask("call", "eval", name="eval")

    def state_dict(self) -> dict:
        """{name: tensor}, copies on the judge's side."""
        return self._ask("state_dict", "state_dict")

    def load_state_dict(self, state: dict, strict: bool = True) -> dict:
        """Load ``state`` into the worker's model; {"missing": [...], "unexpected": [...]}."""
        return self._ask("load_state_dict", "load_state_dict", state=dict(state), strict=strict)

    def named_parameters(self) -> list:
        return [tuple(pair) for pair in self._ask("named_parameters", "named_parameters")]

    def parameters(self) -> list:
        """The parameters' values, copies on the judge's side (changing them changes nothing there)."""
        return [tensor for _, tensor in self.named_parameters()]

    def parameter_shapes(self) -> list:
        """[(name, shape as a list)], without transferring the values."""
        return [tuple(pair) for pair in self._ask("parameter_shapes", "parameter_shapes")]

    def num_parameters(self) -> int:
        return sum(int(torch.Size(shape).numel()) for _, shape in self.parameter_shapes())

    def structure(self) -> list:
        """The module tree as plain data: for each submodule (the root first, named "") its
        qualified name, class, the class's module, own parameters' shapes and, for torch.nn
        layers, hyperparameters (in/out channels, kernel_size, stride, padding, bias, ...).
        What the student's code claims: check it against the weights, not as proof."""
        return self._ask("structure", "structure")

    def backward(self, inputs, grad_output, **kwargs) -> dict:
        """Forward on ``inputs`` in the worker and backward from ``grad_output``: a dict of
        "output", "input_grads" and "parameter_grads" ({name: tensor or None})."""
        return self._ask("backward", "backward", name="__call__", args=list(inputs), kwargs=kwargs,
                         grad_output=grad_output)
