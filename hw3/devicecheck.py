"""Device correctness without a GPU: run a function on tensors that say they live on another device.

Student code that creates a tensor without its inputs' device (``torch.zeros(n)`` instead of
``torch.zeros(n, device=x.device)``, ``torch.randn(shape)`` instead of ``torch.randn_like(mu)``)
passes every CPU test and crashes as soon as it meets a CUDA tensor. A CPU-only grader has no
CUDA tensor to give it, so the graded device tests use ``OnDevice`` tensors instead::

    from hw3.devicecheck import DeviceCheck

    check = DeviceCheck("conv2d", "create new tensors with device=x.device (or torch.zeros_like)")
    with check:                                   # inside: new tensors asked for x.device are on meta
        y = cnn.conv2d(check.put(x), check.put(w))  # x.device is meta; computed for real, on the CPU
        check.returned(y, "conv2d(x, weight)")    # the result must be on meta too

An ``OnDevice`` tensor holds a real CPU tensor and reports ``OFF_CPU`` (the meta device) as its
device. Every operation on it reaches ``__torch_dispatch__``, which computes the result for real
with the CPU tensors inside (so ``.item()``, boolean masks, data-dependent shapes and
torch.distributions' argument checks all work, unlike on a bare meta tensor) and gives it the
device the operation would give it on a GPU. While ``off_cpu`` is active, a new tensor made with
``device=x.device`` (or ``*_like``, ``x.new_*``, ``.to(x)``) is on ``OFF_CPU`` too; one made
without a device is an ordinary CPU tensor, and an operation that mixes it with ``OFF_CPU``
tensors fails with ``WrongDevice``, as CUDA would. The rules are CUDA's: a 0-dimensional CPU
tensor (a number) may join any operation; ``copy_`` and ``.to`` move data between devices;
indices on the CPU may index a tensor on the device.

Why not bare meta tensors: they have no values, so correct code that calls ``.item()``, indexes
with a boolean mask or builds a ``torch.distributions.Normal`` (whose argument check reads the
values) cannot run on them; OnDevice tensors run all of it.
"""
import torch
from torch.utils._python_dispatch import TorchDispatchMode, return_and_correct_aliasing
from torch.utils._pytree import tree_flatten, tree_map

OFF_CPU = torch.device("meta")

aten = torch.ops.aten
# Operations that may take their tensors from different devices (as on CUDA).
MOVES = {aten._to_copy.default, aten.copy_.default, aten.copy.default, aten._copy_from.default,
         aten._copy_from_and_resize.default, aten.lift_fresh.default, aten.lift_fresh_copy.default}
# Indexing a tensor on the device with CPU indices is allowed (not the other way round).
INDEXING = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default, aten._index_put_impl_.default}


class WrongDevice(AssertionError):
    """An operation met a CPU tensor and a tensor on OFF_CPU: on a GPU it would raise."""


class OnDevice(torch.Tensor):
    """A real CPU tensor (``elem``) that reports the device OFF_CPU."""

    @staticmethod
    def __new__(cls, elem):
        assert type(elem) is torch.Tensor and elem.device.type == "cpu", "OnDevice wraps a plain CPU tensor"
        return torch.Tensor._make_wrapper_subclass(
            cls, elem.shape, strides=elem.stride(), storage_offset=elem.storage_offset(), dtype=elem.dtype,
            layout=elem.layout, device=OFF_CPU, requires_grad=elem.requires_grad)

    def __init__(self, elem):
        self.elem = elem

    def __repr__(self):
        return f"OnDevice({self.elem!r}, device={OFF_CPU})"

    def __tensor_flatten__(self):
        return ["elem"], None

    @staticmethod
    def __tensor_unflatten__(inner, meta, outer_size, outer_stride):
        return OnDevice(inner["elem"])

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        return dispatch(None, func, args, kwargs or {})


def on_device(tensor: torch.Tensor) -> OnDevice:
    """A copy of a CPU tensor on OFF_CPU (a leaf that requires grad if ``tensor`` does)."""
    return OnDevice(tensor.detach().clone()).requires_grad_(tensor.requires_grad)


def unwrap(tensor):
    """The CPU tensor inside an OnDevice tensor (detached from any graph), or the tensor itself."""
    if isinstance(tensor, OnDevice):
        return tensor.elem
    return tensor


def describe(tensor):
    where = "the CPU" if tensor.device.type == "cpu" else str(tensor.device)
    return f"a tensor of shape {tuple(tensor.shape)} on {where}"


def dispatch(mode, func, args, kwargs):
    flat, _ = tree_flatten((args, kwargs))
    tensors = [t for t in flat if isinstance(t, torch.Tensor)]
    ours = [t for t in tensors if isinstance(t, OnDevice)]
    others = [t for t in tensors if not isinstance(t, OnDevice)]
    target = kwargs.get("device")
    wanted_here = target is not None and torch.device(target).type == OFF_CPU.type
    if ours and func not in MOVES:
        # CPU indices may index a tensor on the device (not the other way round).
        indices = {id(t) for t in tree_flatten(args[1])[0]} if func in INDEXING and len(args) > 1 else set()
        for t in others:
            if t.device.type == "cpu" and (t.dim() == 0 or id(t) in indices):
                continue  # a CPU number joins any operation, on CUDA too
            error = WrongDevice(f"{func.__name__} got {describe(t)} and tensors on {OFF_CPU.type}; on a GPU this "
                                f"raises 'Expected all tensors to be on the same device'")
            if mode is not None:
                mode.errors.append(error)
            raise error
    if any(t.device.type == OFF_CPU.type and not isinstance(t, OnDevice) for t in tensors):
        raise WrongDevice(f"{func.__name__} got a bare {OFF_CPU.type} tensor (it has no values)")
    inner_kwargs = dict(kwargs)
    if wanted_here:
        inner_kwargs["device"] = torch.device("cpu")
    out = func(*tree_map(unwrap, args), **tree_map(unwrap, inner_kwargs))
    # Where the result lives: where .to() sends it; else on the device if an input was there or the
    # operation was asked for it; else (a factory without a device, an operation on CPU tensors) the CPU.
    if func is aten._to_copy.default and target is not None:
        here = wanted_here
    else:
        here = bool(ours) or wanted_here
    if here:
        out = tree_map(lambda t: OnDevice(t) if type(t) is torch.Tensor else t, out)
    if ours and (func._schema.is_mutable or any(r.alias_info is not None for r in func._schema.returns)):
        return return_and_correct_aliasing(func, args, kwargs, out)
    return out


class off_cpu(TorchDispatchMode):
    """While active: factories asked for OFF_CPU make OnDevice tensors, and an operation that mixes
    CPU and OFF_CPU tensors raises WrongDevice (also kept in ``errors``, in case the code under
    test catches it)."""

    @classmethod
    def _should_skip_dynamo(cls):
        return False  # PyTorch's documented opt-out: otherwise entering the mode imports torch._dynamo

    def __init__(self):
        super().__init__()
        self.errors = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return dispatch(self, func, args, kwargs or {})


class DeviceCheck:
    """A graded device test: inputs put on OFF_CPU, the code under test run with ``off_cpu`` active,
    and a failure message that says what to fix::

        check = DeviceCheck("conv2d", "create new tensors with device=x.device (or torch.zeros_like)")
        with check:
            y = cnn.conv2d(check.put(x), check.put(w))
            check.returned(y, "conv2d(x, weight)")
    """

    def __init__(self, what: str, hint: str):
        self.what, self.hint = what, hint
        self.mode = None

    def put(self, tensor):
        """``tensor`` (a CPU tensor) on OFF_CPU; anything else unchanged."""
        return on_device(tensor) if isinstance(tensor, torch.Tensor) else tensor

    def returned(self, value, name: str):
        """Assert ``value`` is a tensor on OFF_CPU, like the inputs; return it."""
        assert isinstance(value, torch.Tensor), f"{name} should return a torch.Tensor, got {type(value).__name__}"
        assert isinstance(value, OnDevice), (
            f"{name} returned a tensor on the {value.device.type.upper()} while its inputs were on "
            f"{OFF_CPU.type}: the result must be on the inputs' device; {self.hint}")
        return value

    def __enter__(self):
        self.mode = off_cpu()
        self.mode.__enter__()
        return self

    def __exit__(self, kind, error, traceback):
        mode, self.mode = self.mode, None
        mode.__exit__(None, None, None)
        found = error if isinstance(error, WrongDevice) else (mode.errors[0] if mode.errors else None)
        if found is not None and (kind is None or isinstance(error, (WrongDevice, RuntimeError, AssertionError))):
            raise AssertionError(f"{self.what} created a tensor on the CPU while its inputs were on "
                                 f"{OFF_CPU.type} ({found}): {self.hint}") from None
        return False


def judged(report, what: str, hint: str, names=None) -> list:
    """The judge's reading of a worker's ``hw3.remote.probes.on_device`` report, with DeviceCheck's
    messages: fails if the code mixed devices, raised, or returned a tensor off OFF_CPU; else the
    CPU values of the outputs (``names[i]`` names output i in a failure)."""
    error, wrong = report.get("error"), report.get("wrong_device")
    if wrong and (not error or str(error).split(":")[0] in ("WrongDevice", "RuntimeError", "AssertionError")):
        raise AssertionError(f"{what} created a tensor on the CPU while its inputs were on {OFF_CPU.type} "
                             f"({wrong}): {hint}")
    if error:
        raise AssertionError(f"{what} raised {error}")
    values = []
    for index, output in enumerate(report.get("outputs") or []):
        name = names[index] if names and index < len(names) else what
        values.append(judged_tensor(output, name, hint))
    return values


def judged_tensor(output, name: str, hint: str) -> torch.Tensor:
    """One ``tensor_report`` of a probe: the tensor's CPU value, if it was on OFF_CPU."""
    assert output is not None, f"{name}: no gradient reached it on {OFF_CPU.type}"
    assert output.get("tensor") is True, f"{name} should return a torch.Tensor, got {output.get('type')}"
    assert output.get("on_device") is True, (
        f"{name} returned a tensor on the CPU while its inputs were on {OFF_CPU.type}: the result must be on "
        f"the inputs' device; {hint}")
    value = output.get("value")
    assert type(value) is torch.Tensor, f"{name}: the worker sent no value"
    return value
