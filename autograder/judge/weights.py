"""Trained tensors into the judge's copy of a prescribed network: what every problem's judge shares.

* :class:`WeightMismatch`: trained weights that do not fit the prescribed architecture; the
  message names the layer (a failed training test shows it).
* :func:`named_tensors`: what came back from the worker, checked to be (name, tensor) pairs.
* :func:`first_fit`: each prescribed layer gets the first trained tensor (or layer) not taken yet
  whose signature (its shape, say) is the layer's; for networks whose tensors a student may name
  and order freely (Problem 1's raw parameters, Problem 3's Linear layers).
* :func:`load_in_order`: tensor after tensor in the prescribed model's state_dict order, each of
  its shape; for networks whose order is prescribed (Problem 4's nn.Sequential, Problem 2's
  provided MnistEmbeddingNet).
"""
import torch


class WeightMismatch(AssertionError):
    """Trained weights that do not fit the prescribed architecture (the message names the layer)."""


def named_tensors(value, what: str) -> list:
    """``value`` ({name: tensor}, or [(name, tensor), ...]) as a list of (name, tensor) pairs, in
    its order. Raises WeightMismatch when it is anything else."""
    pairs = list(value.items()) if type(value) is dict else value
    if type(pairs) not in (list, tuple) or not all(
            type(p) in (list, tuple) and len(p) == 2 and type(p[0]) is str and type(p[1]) is torch.Tensor
            for p in pairs):
        raise WeightMismatch(f"{what} did not come back as {{name: tensor}}")
    return [(name, tensor) for name, tensor in pairs]


def first_fit(slots: list, candidates: list) -> tuple:
    """Match ``slots`` (the prescribed layers' signatures, in the handout's order) with
    ``candidates`` (the trained ones, in the student's order): each slot takes the first candidate
    not taken yet whose signature equals its own. Returns (for each slot the index of its
    candidate or None, the indices of the candidates left over)."""
    taken, chosen = set(), []
    for signature in slots:
        index = next((i for i, other in enumerate(candidates) if i not in taken and other == signature), None)
        chosen.append(index)
        if index is not None:
            taken.add(index)
    return chosen, [i for i in range(len(candidates)) if i not in taken]


def describe_tensor(tensor) -> str:
    return f"{getattr(tensor, 'dtype', type(tensor).__name__)}"


def load_in_order(model: torch.nn.Module, trained: list, what: str, layer=None, hint: str = "") -> torch.nn.Module:
    """Load ``trained`` ((name, tensor) pairs, in their order) into ``model``, the judge's own copy
    of the prescribed architecture, tensor by tensor in ``model.state_dict()``'s order: names may
    differ, shapes and kinds (floating point or not) may not. A missing, extra or misshapen tensor
    raises WeightMismatch, its message starting with ``what`` and naming the layer (``layer(key)``,
    by default "the prescribed layer <key>"), ending with ``hint``. Returns ``model`` in evaluation mode."""
    layer = layer or (lambda key: f"the prescribed layer {key}")
    trained = named_tensors(trained, f"{what}: the trained weights")
    expected = list(model.state_dict().items())
    for index, (key, reference) in enumerate(expected):
        shape = tuple(reference.shape)
        if index >= len(trained):
            raise WeightMismatch(f"{what}: the trained weights stop after {len(trained)} tensors (the prescribed "
                                 f"network has {len(expected)}); {layer(key)}, of shape {shape}, has none{hint}")
        name, tensor = trained[index]
        if tensor.is_floating_point() != reference.is_floating_point() or (
                not tensor.is_floating_point() and tensor.dtype != reference.dtype):
            kind = "a floating-point" if reference.is_floating_point() else f"a {reference.dtype}"
            raise WeightMismatch(f"{what}: {layer(key)} needs {kind} tensor of shape {shape}; tensor number "
                                 f"{index + 1} of the trained weights ({name!r}) is {describe_tensor(tensor)}{hint}")
        if tuple(tensor.shape) != shape:
            raise WeightMismatch(f"{what}: {layer(key)} has shape {shape}; tensor number {index + 1} of the trained "
                                 f"weights ({name!r}) has shape {tuple(tensor.shape)}{hint}")
    if len(trained) > len(expected):
        more = len(trained) - len(expected)
        extra = ", ".join(f"{n} {tuple(t.shape)}" for n, t in trained[len(expected):][:5])
        raise WeightMismatch(f"{what}: the trained weights have {more} tensor{'s' if more > 1 else ''} more than "
                             f"the prescribed network's {len(expected)}, which belong to no layer of it: {extra}{hint}")
    with torch.no_grad():
        for (_, mine), (_, yours) in zip(expected, trained):
            mine.copy_(yours)
    return model.eval()
