"""Provided code that the judge runs in the worker, beside the student's code.

    report = cvae.provided("hw3.remote.probes.on_device", "one_hot", [labels])

Each probe takes the student module first (RemoteModule.provided passes it) and returns plain data
saying what happened, never a verdict: the judge decides, and checks the values it can.
"""
import torch

from hw3 import devicecheck


def tensor_report(value):
    """A returned value as data: a tensor's CPU copy and whether it was on OFF_CPU."""
    if not isinstance(value, torch.Tensor):
        return {"tensor": False, "type": type(value).__name__}
    return {"tensor": True, "on_device": isinstance(value, devicecheck.OnDevice),
            "requires_grad": bool(value.requires_grad),
            "value": devicecheck.unwrap(value).detach().clone().contiguous()}


def outputs_of(value) -> list:
    return list(value) if isinstance(value, (tuple, list)) else [value]


def on_device(module, name, args=(), kwargs=None, *, target=None, backward=False):
    """Call ``name`` of the student module (of ``target`` when given: a worker object passed by its
    handle, e.g. a model) with every tensor argument on OFF_CPU (hw3.devicecheck) while ``off_cpu``
    is active; with ``backward``, backpropagate from the sum of the first output.

    Returns {"error": "Type: message" or None, "wrong_device": the first mixing of devices or None
    (also when the code caught it), "outputs": [tensor_report of each output], "grads": [tensor_report
    of each argument's gradient, or None]}; a tuple or list result counts as several outputs."""
    owner = module if target is None else target
    inputs = [devicecheck.on_device(a.requires_grad_(backward and a.is_floating_point()))
              if isinstance(a, torch.Tensor) else a for a in args]
    report = {"error": None, "wrong_device": None, "outputs": [], "grads": []}
    mode = devicecheck.off_cpu()
    try:
        with mode:
            value = getattr(owner, name)(*inputs, **(kwargs or {}))
            report["outputs"] = [tensor_report(v) for v in outputs_of(value)]
            if backward:
                first = outputs_of(value)[0]
                first.sum().backward()
    except Exception as error:  # the student's code raised: data for the judge
        report["error"] = f"{type(error).__name__}: {error}"[:2000]
        if isinstance(error, devicecheck.WrongDevice):
            report["wrong_device"] = str(error)[:2000]
    if report["wrong_device"] is None and mode.errors:
        report["wrong_device"] = str(mode.errors[0])[:2000]
    if backward:
        report["grads"] = [tensor_report(a.grad) if isinstance(a, torch.Tensor) and a.grad is not None else None
                           for a in inputs]
    return report


def gradients(module, name, args=(), kwargs=None, *, target=None, wrt=None, grad_output=None):
    """Call ``name`` of the student module (of ``target`` when given, e.g. a loss's handle) with the
    tensor arguments at the positions ``wrt`` (default: every floating one) recording gradients, the
    others as given; backpropagate ``grad_output`` (default: ones) from the first output, if it is a
    tensor that requires grad.

    Returns {"output": the first output (detached if a tensor), "requires_grad": whether it required
    grad, "grads": [each argument's gradient, or None]}. What the student's code raises is raised."""
    positions = range(len(args)) if wrt is None else set(wrt)
    inputs = [a.detach().clone().requires_grad_(True)
              if i in positions and isinstance(a, torch.Tensor) and a.is_floating_point() else a
              for i, a in enumerate(args)]
    owner = module if target is None else target
    with torch.enable_grad():
        first = outputs_of(getattr(owner, name)(*inputs, **(kwargs or {})))[0]
        if not isinstance(first, torch.Tensor):
            return {"output": first, "requires_grad": False, "grads": [None] * len(inputs)}
        requires_grad = bool(first.requires_grad)
        if requires_grad:
            first.backward(torch.ones_like(first) if grad_output is None else grad_output.to(first))
    return {"output": first.detach().clone(), "requires_grad": requires_grad,
            "grads": [a.grad if isinstance(a, torch.Tensor) and i in positions else None
                      for i, a in enumerate(inputs)]}


def trainable(module, target):
    """The names of the parameters of ``target`` (a model's handle) that require grad."""
    return [name for name, parameter in target.named_parameters() if parameter.requires_grad]


def torch_sequential(module, layers):
    """An nn.Sequential of torch.nn layers, built here from ``layers`` ([[class name, *arguments]],
    e.g. [["Linear", 3, 4], ["ReLU"]]), handed to the judge as a handle: a model for the student's
    code to work on that is not the student's own (an optimizer's, say)."""
    built = []
    for name, *arguments in layers:
        cls = getattr(torch.nn, name, None) if type(name) is str and not name.startswith("_") else None
        if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
            raise ValueError(f"torch.nn has no layer {str(name)[:100]!r}")
        built.append(cls(*arguments))
    return torch.nn.Sequential(*built)


def _plain_setting(value):
    """An optimizer setting as a number, string, None or tuple of numbers; NotImplemented if it is none."""
    if type(value) in (bool, int, float, str, type(None)):
        return value
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, (tuple, list)):
        items = [_plain_setting(v) for v in value]
        if all(type(v) in (bool, int, float) for v in items):
            return tuple(items)
    return NotImplemented


def optimizer_report(module, optimizer, model=None):
    """An optimizer (a handle) as data: ``class`` and ``module`` of its class, ``bases`` (the
    qualified names of its class and every base class, e.g. "torch.optim.adam.Adam"), and
    ``param_groups``: for each group, its ``settings`` (lr, betas, ... as numbers, strings, None or
    tuples of numbers; others left out) and ``params``, each parameter's position in
    ``list(model.parameters())`` (-1 for one that is not the model's; the model a handle too).
    ``model_parameters`` is that list's length (0 without a model)."""
    cls = type(optimizer)
    positions = {id(p): i for i, p in enumerate(model.parameters())} if model is not None else {}
    groups = []
    for group in getattr(optimizer, "param_groups", None) or []:
        settings = {str(k): _plain_setting(v) for k, v in group.items() if k != "params"}
        groups.append({"settings": {k: v for k, v in settings.items() if v is not NotImplemented},
                       "params": [positions.get(id(p), -1) for p in group.get("params", [])]})
    return {"class": cls.__name__, "module": cls.__module__,
            "bases": [f"{c.__module__}.{c.__qualname__}" for c in cls.__mro__],
            "param_groups": groups, "model_parameters": len(positions)}


def evaluated(module, model, method, *args):
    """``model.<method>(*args)`` (``model(*args)`` for "__call__") with ``model`` in evaluation mode,
    without gradients, each tensor argument moved to the model's device first; the model's mode is
    restored after. Returns the output's tensors on the CPU (a tuple or list as a list). For the
    training tests where the judge's own copy of the architecture is absent (a student's machine)."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"expected a trained model, got {type(model).__name__}")
    if type(method) is not str or (method.startswith("_") and method != "__call__"):
        raise ValueError(f"not a public method: {method!r}")
    device = next((t.device for t in [*model.parameters(), *model.buffers()]), torch.device("cpu"))
    inputs = [a.to(device) if isinstance(a, torch.Tensor) else a for a in args]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = model(*inputs) if method == "__call__" else getattr(model, method)(*inputs)
    finally:
        model.train(was_training)
    cpu = (lambda v: v.detach().cpu() if isinstance(v, torch.Tensor) else v)
    return [cpu(v) for v in output] if isinstance(output, (tuple, list)) else cpu(output)
