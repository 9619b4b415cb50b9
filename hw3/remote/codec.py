"""The only format that crosses between the judge and the worker: plain data, bounded.

Plain data is an exact ``torch.Tensor`` (dense, strided, on the CPU, owning its storage, not
requiring grad), ``int``, ``float``, ``bool``, ``str``, ``bytes``, ``None``, and ``list``,
``tuple`` and ``dict`` (with ``str`` keys) of those. Types are checked exactly: a subclass of any
of them (a Tensor subclass, an ``int`` whose ``__eq__`` says yes to everything) is refused, so
nothing that crosses can run code on the other side when it is compared, printed or used.

Bytes are made with ``torch.save`` and read with ``torch.load(weights_only=True)``, whose
unpickler builds only tensors and builtin containers (loading cannot run code); what it built is
then checked again, because the sender may not be the code in this file.
"""
import io
import struct

import torch

MAX_DEPTH = 32                       # nesting of lists, tuples and dicts
MAX_ITEMS = 200_000                  # values in one message, containers included
MAX_STRING_CHARS = 1_000_000         # one str
MAX_BYTES_LEN = 1_000_000            # one bytes
MAX_INT_BITS = 64                    # a Python int's magnitude (no 10**100000)
MAX_TENSOR_BYTES = 256 * 2 ** 20     # all tensors of one message together
MAX_MESSAGE_BYTES = MAX_TENSOR_BYTES + 32 * 2 ** 20

DTYPES = frozenset({
    torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
    torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128,
})
SCALARS = (bool, int, float, str, bytes, type(None))
CONTAINERS = (list, tuple, dict)
HANDLE_KEY = "$handle"               # {HANDLE_KEY: id}: an object kept in the worker, by reference
HEADER = struct.Struct(">Q")         # each message on a stream: its length, then its bytes
ALLOWED = "tensors, numbers, strings, bytes, None, and lists, tuples and dicts (str keys) of them"


class RemoteError(Exception):
    """A value that may not cross the boundary, or a message that breaks the protocol."""


# --- describing what was refused --------------------------------------------------------------

def index_path(where: str, key) -> str:
    """``where`` followed by one subscript, e.g. ``result[1]`` or ``result['mu']``."""
    text = repr(key)
    return f"{where}[{text if len(text) <= 40 else text[:37] + '...'}]"


def a(word: str) -> str:
    """``word`` with its indefinite article: "an int", "a MyTensor"."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def describe(value) -> str:
    """Why ``value`` cannot cross, in words that tell a student what to return instead."""
    cls = type(value)
    name = getattr(cls, "__qualname__", "?")
    if isinstance(value, torch.Tensor):
        return f"{a(name)} (a torch.Tensor subclass) cannot cross; return a plain tensor"
    if cls.__module__ == "numpy" or cls.__module__.startswith("numpy."):
        return f"a numpy.{name} cannot cross; return a torch tensor (torch.from_numpy) or a Python number"
    if isinstance(value, torch.nn.Module):
        return f"{a(name)} (a torch.nn.Module) cannot cross as data"
    for base in (*SCALARS, *CONTAINERS):
        if isinstance(value, base):
            return f"{a(name)} ({a(base.__name__)} subclass) cannot cross; return a plain {base.__name__}"
    if cls.__name__ == "generator":
        return "a generator cannot cross; return a list"
    return f"{a(name)} (from module {cls.__module__}) cannot cross; only {ALLOWED} can"


# --- checking ---------------------------------------------------------------------------------

class _Budget:
    """What one message has used so far of MAX_ITEMS and MAX_TENSOR_BYTES."""

    def __init__(self):
        self.items = 0
        self.tensor_bytes = 0
        self.storages = set()


def tensor_nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def check_tensor(tensor: torch.Tensor, where: str, budget: _Budget, *, arrived: bool) -> None:
    """A plain tensor as it may cross; ``arrived``: also as torch.load must have built it."""
    if tensor.layout != torch.strided:
        raise RemoteError(f"{where}: a {tensor.layout} tensor cannot cross; return a dense tensor (.to_dense())")
    if tensor.dtype not in DTYPES:
        raise RemoteError(f"{where}: a tensor of dtype {tensor.dtype} cannot cross")
    budget.tensor_bytes += tensor_nbytes(tensor)
    if budget.tensor_bytes > MAX_TENSOR_BYTES:
        raise RemoteError(f"{where}: the tensors exceed {MAX_TENSOR_BYTES:,} bytes in all")
    if arrived:
        check_arrived_tensor(tensor, where, budget)


def check_arrived_tensor(tensor: torch.Tensor, where: str, budget: _Budget) -> None:
    """What encode guarantees: detached, on the CPU, contiguous, owning a storage of its own."""
    if tensor.requires_grad:
        raise RemoteError(f"{where}: a tensor arrived requiring grad")
    if tensor.device.type != "cpu" or tensor.is_conj() or tensor.is_neg():
        raise RemoteError(f"{where}: a tensor arrived that is not a plain CPU tensor")
    if not tensor.is_contiguous() or tensor.storage_offset() != 0:
        raise RemoteError(f"{where}: a tensor arrived that is a view into a larger storage")
    if tensor.numel():
        storage = tensor.untyped_storage()
        if storage.nbytes() != tensor_nbytes(tensor):
            raise RemoteError(f"{where}: a tensor arrived that is a view into a larger storage")
        if storage.data_ptr() in budget.storages:
            raise RemoteError(f"{where}: a tensor arrived sharing its storage with another")
        budget.storages.add(storage.data_ptr())


def check_scalar(value, where: str) -> None:
    if type(value) is int and value.bit_length() > MAX_INT_BITS:
        raise RemoteError(f"{where}: an int of {value.bit_length()} bits cannot cross (at most {MAX_INT_BITS})")
    if type(value) is str and len(value) > MAX_STRING_CHARS:
        raise RemoteError(f"{where}: a string of {len(value):,} characters cannot cross (at most {MAX_STRING_CHARS:,})")
    if type(value) is bytes and len(value) > MAX_BYTES_LEN:
        raise RemoteError(f"{where}: {len(value):,} bytes cannot cross (at most {MAX_BYTES_LEN:,})")


def children(value, where: str):
    """(subscript path, child) of a list, tuple or dict; dict keys must be plain str."""
    if type(value) is dict:
        for key, child in value.items():
            if type(key) is not str:
                raise RemoteError(f"{where}: a dict key of type {type(key).__qualname__} cannot cross; use str keys")
            check_scalar(key, f"{where} (a key)")
            yield index_path(where, key), child
    else:
        for index, child in enumerate(value):
            yield index_path(where, index), child


def check(value, where: str = "result", *, arrived: bool = False, budget: _Budget = None, depth: int = 0) -> None:
    """Raise RemoteError, naming the place in ``value`` (e.g. ``result[1]['mu']``), unless it is
    plain data within the bounds. ``arrived``: also check what only decode may see."""
    budget = budget or _Budget()
    budget.items += 1
    if budget.items > MAX_ITEMS:
        raise RemoteError(f"{where}: more than {MAX_ITEMS:,} values in one message")
    cls = type(value)
    if cls is torch.Tensor:
        return check_tensor(value, where, budget, arrived=arrived)
    if cls in SCALARS:
        return check_scalar(value, where)
    if cls not in CONTAINERS:
        raise RemoteError(f"{where}: {describe(value)}")
    if depth >= MAX_DEPTH:
        raise RemoteError(f"{where}: nested deeper than {MAX_DEPTH} levels")
    for path, child in children(value, where):
        check(child, path, arrived=arrived, budget=budget, depth=depth + 1)


# --- converting -------------------------------------------------------------------------------

def portable(value, seen: set):
    """``value`` with every tensor detached, on the CPU and owning exactly its own storage, so
    torch.save writes no more than the tensor (not the whole storage a slice came from)."""
    if type(value) is torch.Tensor:
        tensor = value.detach().cpu().resolve_conj().resolve_neg().contiguous()
        if tensor.numel():
            storage = tensor.untyped_storage()
            if (tensor.storage_offset() or storage.nbytes() != tensor_nbytes(tensor)
                    or storage.data_ptr() in seen):
                tensor = tensor.clone()
            seen.add(tensor.untyped_storage().data_ptr())
        return tensor
    if type(value) is list:
        return [portable(v, seen) for v in value]
    if type(value) is tuple:
        return tuple(portable(v, seen) for v in value)
    if type(value) is dict:
        return {k: portable(v, seen) for k, v in value.items()}
    return value


def encode(value, where: str = "result") -> bytes:
    """The bytes of plain ``value``; RemoteError naming the place of anything else."""
    check(value, where)
    buffer = io.BytesIO()
    torch.save(portable(value, set()), buffer)
    data = buffer.getvalue()
    if len(data) > MAX_MESSAGE_BYTES:
        raise RemoteError(f"{where}: {len(data):,} bytes encoded, over the limit of {MAX_MESSAGE_BYTES:,}")
    return data


def decode(data: bytes, where: str = "message"):
    """The plain value in ``data``, built without running code and checked; RemoteError if it is
    not plain data made by :func:`encode`."""
    if type(data) is not bytes or len(data) > MAX_MESSAGE_BYTES:
        raise RemoteError(f"{where}: not a message of at most {MAX_MESSAGE_BYTES:,} bytes")
    try:
        value = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # whatever a malformed message makes torch.load raise
        raise RemoteError(f"{where}: could not be read as plain data ({type(error).__name__}: "
                          f"{str(error)[:300]})") from None
    check(value, where, arrived=True)
    return value


def frame(data: bytes) -> bytes:
    """``data`` as it goes on a stream: its length first."""
    return HEADER.pack(len(data)) + data
