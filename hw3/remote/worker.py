"""The untrusted side: a request loop around one student module.

    python -m hw3.remote.worker --impl-file PATH/gan.py --module gan

Requests arrive on fd 0 and responses leave on fd 1, each a length-prefixed message of
:mod:`hw3.remote.codec`. Before the student's file is imported, both protocol streams are moved to
fresh descriptors: fd 0 then reads nothing, and fd 1 and fd 2 (with ``sys.stdout`` and
``sys.stderr``) write to a capture file whose head and tail come back with each response. This
process imports the student's file (through :mod:`hw3.impl`), ``hw3`` and torch; it never sees
test code or expected values, so what it returns is data for the judge to check, not a verdict.

Every request may carry the judge's torch RNG state (set before the request runs) and every
response carries the worker's (after it ran), so seeding on the judge side behaves as in-process.

One module (over 400 lines) on purpose: it is everything that runs beside the student's code -- the
streams, the request loop and what each operation exports -- so an audit of what can leave the
sandbox reads it top to bottom; the wire format is already apart, in :mod:`hw3.remote.codec`.
"""
import argparse
import ctypes
import importlib
import fcntl
import io
import os
import signal
import stat
import sys
import tempfile
import traceback
from pathlib import Path

import torch

from hw3 import impl
from hw3.remote import codec

OUTPUT_HEAD = 8_000          # bytes of captured output returned per response, from its start
OUTPUT_TAIL = 8_000          # ... and from its end
MESSAGE_CHARS = 4_000        # of an exception's message
TRACEBACK_FRAMES = 12        # the innermost ones
HANDLE_TYPES = (torch.nn.Module, torch.optim.Optimizer)  # returned as handles, never as data
# Constructor arguments of torch.nn's layers, reported by `structure` where a layer has them.
HYPERPARAMETERS = (
    "in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding", "dilation",
    "groups", "padding_mode", "in_features", "out_features", "negative_slope", "normalized_shape",
    "elementwise_affine", "num_features", "eps", "momentum", "affine", "track_running_stats", "p",
    "inplace", "start_dim", "end_dim", "dim", "unflattened_size", "output_size", "scale_factor",
    "mode", "ceil_mode", "count_include_pad", "num_embeddings", "embedding_dim", "padding_idx",
    "alpha", "beta", "threshold", "min_val", "max_val", "num_groups", "num_channels",
)
HERE = {Path(__file__).resolve(), Path(impl.__file__).resolve()}
MODULE_CALL = Path(torch.nn.Module.__call__.__code__.co_filename).resolve()  # nn.Module's dispatch: noise


class StudentRaised(Exception):
    """The student's code raised ``error`` (any BaseException, SystemExit included)."""

    def __init__(self, error: BaseException):
        super().__init__(error)
        self.error = error


def run_student(function, *args, **kwargs):
    """``function(*args, **kwargs)``, with whatever it raises wrapped in StudentRaised."""
    try:
        return function(*args, **kwargs)
    except BaseException as error:  # noqa: B036 -- sys.exit in student code is the student's error too
        raise StudentRaised(error) from None


# --- the streams ------------------------------------------------------------------------------

class Streams:
    """The protocol's descriptors, and the capture file that fd 1 and fd 2 now write to."""

    def __init__(self):
        self.requests = os.dup(0)
        self.responses = os.dup(1)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        self.capture = capture_descriptor()
        os.dup2(self.capture, 1)
        if self.capture != 2:
            os.dup2(self.capture, 2)
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
        sys.stdout = text_writer(1)
        sys.stderr = text_writer(2)

    def read_request(self):
        """The next request's bytes, or None when the judge has closed the stream."""
        header = read_exactly(self.requests, codec.HEADER.size)
        if header is None:
            return None
        (length,) = codec.HEADER.unpack(header)
        if length > codec.MAX_MESSAGE_BYTES:
            raise SystemExit(f"a request of {length} bytes: over the limit")
        return read_exactly(self.requests, length)

    def send(self, data: bytes) -> None:
        view = memoryview(codec.frame(data))
        while view:
            view = view[os.write(self.responses, view):]

    def take_output(self) -> str:
        """What was printed since the last call (head and tail if long); the capture is emptied."""
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        size = os.fstat(self.capture).st_size
        if size <= OUTPUT_HEAD + OUTPUT_TAIL:
            data = os.pread(self.capture, size, 0)
        else:
            data = (os.pread(self.capture, OUTPUT_HEAD, 0)
                    + f"\n[... {size - OUTPUT_HEAD - OUTPUT_TAIL:,} bytes of output not shown ...]\n".encode()
                    + os.pread(self.capture, OUTPUT_TAIL, size - OUTPUT_TAIL))
        os.ftruncate(self.capture, 0)
        os.lseek(self.capture, 0, os.SEEK_SET)
        return data.decode("utf-8", errors="backslashreplace")


def capture_descriptor() -> int:
    """fd 2 when the judge made it a file (it reads what is left there if this process dies),
    else a new temporary file; in append mode, so that emptying it restarts writing at 0."""
    fd = 2 if stat.S_ISREG(os.fstat(2).st_mode) else os.dup(tempfile.TemporaryFile().fileno())
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
    return fd


def text_writer(fd: int) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), write_through=True, errors="backslashreplace")


def read_exactly(fd: int, count: int):
    chunks, left = [], count
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# --- errors as data ---------------------------------------------------------------------------

def short_filename(filename: str, student_file: Path) -> str:
    """The student's file as its name (gan.py), hw3's files as hw3/..., a library's from its package."""
    path = Path(filename)
    if path == student_file:
        return student_file.name
    parts = path.parts
    for anchor in ("site-packages", "dist-packages"):
        if anchor in parts:
            return "/".join(parts[parts.index(anchor) + 1:])
    if "hw3" in parts:
        return "/".join(parts[len(parts) - 1 - parts[::-1].index("hw3"):])
    return filename


def format_traceback(error: BaseException, student_file: Path) -> str:
    """The innermost frames of ``error``'s traceback, without this package's and the importer's."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if Path(frame.filename).resolve() not in HERE | {MODULE_CALL}
              and not frame.filename.startswith("<frozen")]
    summary = traceback.StackSummary.from_list(
        [(short_filename(f.filename, student_file), f.lineno, f.name, f.line) for f in frames[-TRACEBACK_FRAMES:]])
    return "".join(summary.format())


def error_data(origin: str, error: BaseException, student_file: Path) -> dict:
    message = str(error)
    if len(message) > MESSAGE_CHARS:
        message = message[:MESSAGE_CHARS] + f" [... {len(message) - MESSAGE_CHARS:,} characters more]"
    return {"origin": origin, "type": type(error).__name__, "message": message,
            "traceback": format_traceback(error, student_file) if origin == "student" else ""}


# --- module structure -------------------------------------------------------------------------

def hyperparameters(module: torch.nn.Module) -> dict:
    """The standard constructor arguments of a torch.nn layer (none for other classes)."""
    if not type(module).__module__.startswith("torch.nn."):
        return {}
    found = {name: plain_hyperparameter(getattr(module, name)) for name in HYPERPARAMETERS
             if hasattr(module, name)}
    found = {name: value for name, value in found.items() if value is not NotImplemented}
    if hasattr(module, "bias") and isinstance(module.bias, (torch.Tensor, type(None))):
        found["bias"] = module.bias is not None
    return found


def plain_hyperparameter(value):
    if type(value) in (bool, int, float, str, type(None)):
        return value
    if isinstance(value, (tuple, list)) and all(type(v) in (bool, int, float) for v in value):
        return tuple(value)
    return NotImplemented


def structure(model: torch.nn.Module) -> list:
    """Each submodule (the root first, named ""): name, class, the class's module, its own
    parameters' shapes and, for torch.nn layers, their hyperparameters."""
    return [{"name": name, "class": type(sub).__name__, "module": type(sub).__module__,
             "parameters": {n: list(p.shape) for n, p in dict.items(sub.__dict__.get("_parameters", {}))
                            if isinstance(p, torch.Tensor)},
             "hyperparameters": hyperparameters(sub)}
            for name, sub in held_modules(model)]


# What a model holds, read from torch.nn.Module's own registries (never a student class's overrides of
# named_parameters, named_modules or state_dict, which may say anything).

def held_modules(model: torch.nn.Module, prefix: str = "", seen=None) -> list:
    """[(qualified name, module)], the root first (named ""), each module once, as named_modules."""
    seen = set() if seen is None else seen
    if id(model) in seen:
        return []
    seen.add(id(model))
    found = [(prefix, model)]
    for name, child in dict.items(model.__dict__.get("_modules", {})):
        if isinstance(child, torch.nn.Module):
            found += held_modules(child, f"{prefix}.{name}" if prefix else name, seen)
    return found


def held_parameters(model: torch.nn.Module) -> list:
    """[(qualified name, parameter)], each parameter once, as named_parameters."""
    found, seen = [], set()
    for prefix, module in held_modules(model):
        for name, parameter in dict.items(module.__dict__.get("_parameters", {})):
            if isinstance(parameter, torch.Tensor) and id(parameter) not in seen:
                seen.add(id(parameter))
                found.append((f"{prefix}.{name}" if prefix else name, parameter))
    return found


def held_state(model: torch.nn.Module) -> dict:
    """{name: tensor} of the parameters and persistent buffers, as state_dict (detached)."""
    state = {}
    for prefix, module in held_modules(model):
        skipped = module.__dict__.get("_non_persistent_buffers_set", set())
        tensors = [*dict.items(module.__dict__.get("_parameters", {})),
                   *((n, b) for n, b in dict.items(module.__dict__.get("_buffers", {})) if n not in skipped)]
        for name, tensor in tensors:
            if isinstance(tensor, torch.Tensor):
                state[f"{prefix}.{name}" if prefix else name] = tensor.detach()
    return state


def flat_tensors(value) -> list:
    return list(value) if isinstance(value, (tuple, list)) else [value]


def gradient_inputs(args: list) -> list:
    """Copies of the tensor arguments that record gradients; other arguments as they are."""
    return [a.detach().clone().requires_grad_(a.is_floating_point() or a.is_complex())
            if type(a) is torch.Tensor else a for a in args]


def provided_function(name):
    """The public function ``name`` ("hw3.cnn_experiment.train_convnet") of the provided package."""
    if type(name) is not str or not name.startswith("hw3.") or name.count(".") < 2:
        raise codec.RemoteError(f"not a provided function: {str(name)[:200]!r}")
    module_name, _, function_name = name.rpartition(".")
    if any(not part.isidentifier() or part.startswith("_") for part in name.split(".")):
        raise codec.RemoteError(f"not a public provided function: {name!r}")
    module = importlib.import_module(module_name)
    function = getattr(module, function_name, None)
    if not callable(function) or getattr(function, "__module__", None) != module_name:
        raise codec.RemoteError(f"{name} is not a function defined in {module_name}")
    return function


# --- the requests -----------------------------------------------------------------------------

class Worker:
    """The student module, the objects handed out as handles, and one method per request."""

    def __init__(self, module, student_file: Path):
        self.module = module
        self.student_file = student_file
        self.handles = {}        # handle id -> object
        self.ids = {}            # id(object) -> handle id, so one object keeps one handle
        self.next_id = 1

    # Converting values ---------------------------------------------------------------------------

    def handle_for(self, obj) -> dict:
        key = id(obj)
        if key not in self.ids:
            self.ids[key], self.handles[self.next_id] = self.next_id, obj
            self.next_id += 1
        cls = type(obj)
        return {codec.HANDLE_KEY: self.ids[key], "class": cls.__name__, "module": cls.__module__}

    def export(self, value, depth: int = 0):
        """The plain form of a result: handles for models and optimizers, Parameters and
        torch.Size as plain tensors and tuples; anything else is left for codec.check to refuse."""
        cls = type(value)
        if isinstance(value, HANDLE_TYPES):
            return self.handle_for(value)
        if cls is torch.nn.Parameter:
            return value.detach()
        if cls is torch.Size:
            return tuple(value)
        if depth > codec.MAX_DEPTH:
            return value
        if cls in (list, tuple):
            return cls(self.export(v, depth + 1) for v in value)
        if cls is dict:
            return {k: self.export(v, depth + 1) for k, v in value.items()}
        return value

    def checked(self, value):
        value = self.export(value)
        codec.check(value, "result")
        return value

    def resolve(self, value):
        """Arguments with the judge's handle references replaced by the objects."""
        if type(value) is dict and set(value) == {codec.HANDLE_KEY}:
            return self.handle_object(value[codec.HANDLE_KEY])
        if type(value) in (list, tuple):
            return type(value)(self.resolve(v) for v in value)
        if type(value) is dict:
            return {k: self.resolve(v) for k, v in value.items()}
        return value

    def handle_object(self, handle):
        if handle not in self.handles:
            raise codec.RemoteError(f"no object with handle {handle!r} in this worker")
        return self.handles[handle]

    def target(self, request):
        handle = request.get("handle")
        return self.module if handle is None else self.handle_object(handle)

    def module_of(self, request) -> torch.nn.Module:
        obj = self.target(request)
        if not isinstance(obj, torch.nn.Module):
            raise codec.RemoteError(f"{request['op']} needs an nn.Module; this handle is a {type(obj).__name__}")
        return obj

    def arguments(self, request):
        return self.resolve(list(request.get("args", []))), self.resolve(dict(request.get("kwargs", {})))

    def callable_of(self, request):
        obj, name = self.target(request), request["name"]
        return obj if name == "__call__" else run_student(getattr, obj, name)

    # The requests ------------------------------------------------------------------------------

    def op_getattr(self, request):
        value = run_student(getattr, self.target(request), request["name"])
        if callable(value) and not isinstance(value, HANDLE_TYPES):
            return {"callable": True}
        return {"callable": False, "value": self.checked(value)}

    def op_call(self, request):
        args, kwargs = self.arguments(request)
        return self.checked(run_student(self.callable_of(request), *args, **kwargs))

    def op_construct(self, request):
        args, kwargs = self.arguments(request)
        return self.handle_for(run_student(self.callable_of(request), *args, **kwargs))

    def op_state_dict(self, request):
        state = run_student(held_state, self.module_of(request))
        return self.checked({key: value for key, value in state.items()})

    def op_load_state_dict(self, request):
        model = self.module_of(request)
        result = run_student(model.load_state_dict, request["state"], strict=request.get("strict", True))
        return {"missing": list(result.missing_keys), "unexpected": list(result.unexpected_keys)}

    def op_named_parameters(self, request):
        return self.checked(run_student(held_parameters, self.module_of(request)))

    def op_parameter_shapes(self, request):
        return [(name, list(p.shape)) for name, p in run_student(held_parameters, self.module_of(request))]

    def op_structure(self, request):
        return self.checked(run_student(structure, self.module_of(request)))

    def op_backward(self, request):
        """Forward on the given inputs, backward from ``grad_output``; the gradients of the tensor
        inputs and of the parameters (this request's only: earlier ones are put back after)."""
        function = self.callable_of(request)
        args, kwargs = self.arguments(request)
        inputs = gradient_inputs(args)
        obj = self.target(request)
        parameters = held_parameters(obj) if isinstance(obj, torch.nn.Module) else []
        saved = [p.grad for _, p in parameters]
        for _, p in parameters:
            p.grad = None
        try:
            with torch.enable_grad():
                output = run_student(function, *inputs, **kwargs)
                pairs = [(o, g) for o, g in zip(flat_tensors(output), flat_tensors(request.get("grad_output")))
                         if g is not None and isinstance(o, torch.Tensor) and o.requires_grad]
                if pairs:  # sum(o * g) has gradient g at o; without grad_tensors torch skips importing sympy (1.3 s)
                    run_student(torch.autograd.backward, sum((o * g).sum() for o, g in pairs))
            return self.checked({
                "output": output,
                "input_grads": [x.grad if type(x) is torch.Tensor else None for x in inputs],
                "parameter_grads": {name: p.grad for name, p in parameters}})
        finally:
            for (_, p), grad in zip(parameters, saved):
                p.grad = grad

    def op_rng(self, request):
        return torch.get_rng_state()

    def op_provided(self, request):
        """``hw3.<module>.<function>(student_module, *args, **kwargs)``: the provided code that must run
        beside the student's (a training loop, a probe); what it returns is data for the judge."""
        function = provided_function(request.get("name"))
        args, kwargs = self.arguments(request)
        return self.checked(run_student(function, self.module, *args, **kwargs))

    OPS = {"getattr": op_getattr, "call": op_call, "construct": op_construct, "method": op_call,
           "state_dict": op_state_dict, "load_state_dict": op_load_state_dict,
           "named_parameters": op_named_parameters, "parameter_shapes": op_parameter_shapes,
           "structure": op_structure, "backward": op_backward, "rng": op_rng,
           "provided": op_provided}

    def release(self, handles) -> None:
        for handle in handles:
            obj = self.handles.pop(handle, None)
            if obj is not None:
                self.ids.pop(id(obj), None)

    def answer(self, request) -> dict:
        """The response to one decoded request (never raises for what the student did)."""
        try:
            if type(request) is not dict or request.get("op") not in self.OPS:
                raise codec.RemoteError(f"not a request: {str(request)[:200]}")
            self.release(request.get("release", []))
            if request.get("rng") is not None:
                torch.set_rng_state(request["rng"])
            response = {"ok": True, "value": self.OPS[request["op"]](self, request)}
        except StudentRaised as raised:
            response = {"ok": False, "error": error_data("student", raised.error, self.student_file)}
        except codec.RemoteError as error:
            response = {"ok": False, "error": error_data("boundary", error, self.student_file)}
        except Exception as error:  # a malformed request, or the student broke this process
            response = {"ok": False, "error": error_data("worker", error, self.student_file)}
        response["rng"] = torch.get_rng_state()
        return response


def encode_response(response: dict, output: str) -> bytes:
    """The bytes of ``response``; if it cannot be encoded, an error response saying why."""
    response["output"] = output
    try:
        return codec.encode(response, "response")
    except codec.RemoteError as error:
        return codec.encode({"ok": False, "error": {"origin": "boundary", "type": "RemoteError",
                                                    "message": str(error), "traceback": ""},
                             "rng": torch.get_rng_state(), "output": output}, "response")


def serve(worker: Worker, streams: Streams) -> None:
    while (data := streams.read_request()) is not None:
        try:
            request = codec.decode(data, "request")
        except codec.RemoteError as error:
            request = error  # answered as a malformed request
        streams.send(encode_response(worker.answer(request), streams.take_output()))


def load_student(args, streams: Streams):
    """The student's module, or None after sending the import error as the first response."""
    file = Path(args.impl_file).resolve()
    try:
        if file.name != f"{args.module}.py":
            raise impl.ImplementationError(f"--impl-file {file} is not {args.module}.py")
        module = impl.load(args.module, file.parent)
    except BaseException as error:  # noqa: B036 -- a SystemExit at import is the student's too
        hello = {"ok": False, "error": error_data("student", error, file), "rng": torch.get_rng_state()}
        streams.send(encode_response(hello, streams.take_output()))
        return None
    streams.send(encode_response({"ok": True, "value": {"pid": os.getpid()}, "rng": torch.get_rng_state()},
                                 streams.take_output()))
    return Worker(module, file)


def die_with_parent() -> None:
    """Ask Linux to kill this process when the judge that started it goes (best effort)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hw3.remote.worker", description=__doc__.split("\n")[0])
    parser.add_argument("--impl-file", required=True, help="the student's file, e.g. starter/gan.py")
    parser.add_argument("--module", required=True, choices=impl.STUDENT_MODULES)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    die_with_parent()
    streams = Streams()
    if args.threads:
        torch.set_num_threads(args.threads)
    worker = load_student(args, streams)
    if worker is None:
        return 1
    serve(worker, streams)
    return 0


if __name__ == "__main__":
    sys.exit(main())
