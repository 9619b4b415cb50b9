"""The judge's side of Problem 1: what the tests work out themselves, from the student's cnn.py read
as text and from the plain data the worker sends back. Nothing here imports or runs student code.

* Source checks. Two graded claims can only be observed where the student's code runs: that
  ``conv2d`` computes without PyTorch's convolutions (test 1.1.5: the worker switches them off
  while it runs) and that ``ConvNet`` calls this file's ``conv2d`` and ``global_pool`` (tests 1.3.3
  and 1.3.5: the worker swaps in recording stand-ins). Code in the same process can undo such
  guards, so those tests also read the submitted file (``source_of``) and parse it:
  ``conv2d_source_problems`` and ``convnet_source_problems`` list what the file does that the
  claim forbids, each with its line, and a test fails unless both its worker's report and the
  file are clean. Code that reaches PyTorch's convolutions or patches the libraries only through
  indirection a parser cannot follow (``getattr`` on a computed name, ``exec``, frames,
  ``torch.library``, another module) is refused as such: the message says what to remove.
  The file is parsed, and its file-wide rules kept, by hw3/cnn_source.py; this module checks
  the two claims on it.

The training tests' network (the one the handout prescribes, holding the tensors the worker
trained) is the grader's own code, not the provided package's (``hw3.testing.judge_code``); the
training tests reach it through ``hw3.cnn_experiment.measured_accuracy``.
"""
import ast
import builtins
import re

from hw3 import impl
from hw3.cnn_source import DYNAMIC_CALLS, Source, bound_names, dotted, parsed, problems_text

# Attribute and imported names that are (or build) one of PyTorch's convolutions: F.conv2d,
# torch.convolution, nn.Conv2d, nn.ConvTranspose2d, torch.nn.grad.conv2d_input, torch.ops.aten.*conv* ...
CONVOLUTION_NAME = re.compile(r"conv(olution|_?transpose|_tbc|_depthwise|\d)|slow_conv|thnn_conv", re.IGNORECASE)
# The convolution functions themselves (ConvNet may keep its weights in nn.Conv2d modules, as self.conv1).
CONVOLUTION_FUNCTIONS = frozenset({
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "conv_tbc",
    "convolution", "_convolution", "_convolution_mode", "cudnn_convolution", "mkldnn_convolution",
    "miopen_convolution", "_nnpack_spatial_convolution", "conv1d_input", "conv1d_weight", "conv2d_input",
    "conv2d_weight", "conv3d_input", "conv3d_weight", "_conv_forward"})
# The modules conv2d's code may call into (tensor methods need no import).
CONV2D_MODULES = frozenset({"torch", "math", "numpy", "itertools", "functools", "typing", "einops", "__future__"})
BUILTIN_NAMES = frozenset(dir(builtins))


def source_of(name: str = "cnn", folder=None) -> str:
    """The text of the student's ``name``.py in the implementation folder under test (never imported)."""
    return (impl.impl_dir(folder) / f"{name}.py").read_text(encoding="utf-8", errors="replace")


def conv2d_source_problems(text: str, filename: str = "cnn.py") -> list:
    """What the file does that a conv2d computed from its formula (without any of PyTorch's
    convolutions) would not: a convolution reached from conv2d's code (through the helpers,
    classes and variables of the file it uses), code it cannot be read through, or changes to
    torch or to conv2d at run time anywhere in the file. [] when clean."""
    source, problems, conv2d = parsed(text, filename, "conv2d", ast.FunctionDef)
    if conv2d is None:
        return problems
    for node in source.reachable(conv2d):
        local = bound_names(node)
        for sub in ast.walk(node):
            line = getattr(sub, "lineno", conv2d.lineno)
            if isinstance(sub, ast.Attribute):
                if CONVOLUTION_NAME.search(sub.attr):
                    problems.append((line, f"conv2d's code uses {ast.unparse(sub)}, one of PyTorch's convolutions"))
                elif sub.attr.startswith("_") and sub.attr != "__init__":
                    problems.append((line, f"conv2d's code uses {ast.unparse(sub)}: no private or special "
                                           f"attributes in conv2d"))
            elif isinstance(sub, (ast.Global, ast.Nonlocal)):
                problems.append((line, "conv2d's code has a global statement"))
            elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                problems += import_problems(source, sub, "conv2d's code")
            elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and sub.id not in local:
                problems += name_problems(source, sub, line)
    return problems_text(problems)


def import_problems(source: Source, node, who: str) -> list:
    for alias in node.names:
        path = alias.name if isinstance(node, ast.Import) else f"{node.module or ''}.{alias.name}"
        if path.split(".")[0] not in CONV2D_MODULES or CONVOLUTION_NAME.search(alias.name):
            return [(node.lineno, f"{who} imports {path}")]
    return []


def name_problems(source: Source, name: ast.Name, line: int) -> list:
    """What a global name used by conv2d's code stands for, if it is not allowed there."""
    if name.id in source.top and not all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in source.top[name.id]):
        return []  # a definition of the file: followed by ``reachable``
    if name.id in source.imports:
        path = source.module_of(name.id)
        if path.split(".")[0] not in CONV2D_MODULES:
            return [(line, f"conv2d's code calls into {path}, which is not PyTorch: write conv2d with torch only")]
        if CONVOLUTION_NAME.search(path.split(".")[-1]):
            return [(line, f"conv2d's code uses {name.id} ({path}), one of PyTorch's convolutions")]
        return []
    if name.id in ("getattr", "setattr", "delattr") or name.id in DYNAMIC_CALLS:
        return [(line, f"conv2d's code calls {name.id}(): write the operations out, so the grader can read them")]
    if name.id in BUILTIN_NAMES:
        return []
    return [(line, f"conv2d's code uses {name.id}, which cnn.py does not define")]


def convnet_source_problems(text: str, filename: str = "cnn.py") -> list:
    """What the file does that a ConvNet whose forward calls this file's conv2d and global_pool
    would not: a forward that never names them, rebinds them, calls one of PyTorch's convolution
    functions or a convolution module it holds, or changes code at run time. [] when clean."""
    source, problems, convnet = parsed(text, filename, "ConvNet", ast.ClassDef)
    if convnet is None:
        return problems
    classes = class_chain(source, convnet)
    methods = {}
    for cls in reversed(classes):   # the subclass's methods override its bases'
        methods.update({n.name: n for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))})
    if "forward" not in methods:
        return problems_text(problems) + [f"line {convnet.lineno}: ConvNet defines no forward method"]
    holders = convolution_holders(classes)
    named, seen, pending = set(), set(), [methods["forward"]]
    while pending:
        method = pending.pop(0)
        if id(method) in seen:
            continue
        seen.add(id(method))
        for node in source.reachable(method, skip=("conv2d", "global_pool", "ConvNet")):
            local = bound_names(node)
            for name in ("conv2d", "global_pool"):
                if name in local:
                    problems.append((getattr(node, "lineno", convnet.lineno),
                                     f"ConvNet's code binds its own {name}: call this file's {name}"))
            for sub in ast.walk(node):
                line = getattr(sub, "lineno", convnet.lineno)
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and sub.id not in local:
                    named.add(sub.id)
                    if CONVOLUTION_NAME.search(source.module_of(sub.id).split(".")[-1]):
                        problems.append((line, f"ConvNet's forward uses {sub.id} ({source.module_of(sub.id)}), "
                                               f"one of PyTorch's convolutions: call conv2d"))
                    if sub.id in ("getattr", "setattr", "delattr") and not self_call(sub):
                        problems.append((line, f"ConvNet's forward calls {sub.id}() on something other than self"))
                elif isinstance(sub, ast.Attribute):
                    if sub.attr in CONVOLUTION_FUNCTIONS:
                        problems.append((line, f"ConvNet's forward uses {ast.unparse(sub)}, one of PyTorch's "
                                               f"convolutions: call this file's conv2d"))
                    if isinstance(sub.value, ast.Name) and sub.value.id == "self":
                        if sub.attr in methods:
                            pending.append(methods[sub.attr])
                        if sub.attr in holders and not weight_access(sub):
                            problems.append((line, f"ConvNet's forward uses self.{sub.attr}, which holds PyTorch "
                                                   f"convolution modules, other than through its .weight and .bias: "
                                                   f"call conv2d(x, self.{sub.attr}.weight, self.{sub.attr}.bias)"))
    for name in ("conv2d", "global_pool"):
        if name not in named:
            problems.append((methods["forward"].lineno, f"ConvNet's forward never calls {name} (this file's "
                                                        f"{name}, by its name)"))
    return problems_text(problems)


def self_call(name: ast.Name) -> bool:
    call = getattr(name, "parent", None)
    return (isinstance(call, ast.Call) and call.func is name and call.args and isinstance(call.args[0], ast.Name)
            and call.args[0].id == "self")


def class_chain(source: Source, cls: ast.ClassDef) -> list:
    """``cls`` and the classes of the file it derives from (not torch's), subclass first."""
    chain, pending = [], [cls]
    while pending:
        node = pending.pop(0)
        if node in chain:
            continue
        chain.append(node)
        for base in node.bases:
            if isinstance(base, ast.Name):
                found = source.definition(base.id, ast.ClassDef)
                if found is not None:
                    pending.append(found)
    return chain


def convolution_holders(classes) -> set:
    """The attributes ``self.X`` the classes assign something that builds a convolution module to."""
    holders = set()
    for cls in classes:
        for node in ast.walk(cls):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                builds = any(isinstance(n, ast.Call) and CONVOLUTION_NAME.search((dotted(n.func) or [""])[-1])
                             for n in ast.walk(node.value))
                if builds:
                    for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                                and target.value.id == "self":
                            holders.add(target.attr)
    return holders


def weight_access(node: ast.Attribute) -> bool:
    """Whether ``self.X`` (``node``) is only read for a .weight or .bias (perhaps after indexing)."""
    parent = getattr(node, "parent", None)
    while isinstance(parent, ast.Subscript) and parent.value is node:
        node, parent = parent, getattr(parent, "parent", None)
    return isinstance(parent, ast.Attribute) and parent.value is node and parent.attr in ("weight", "bias")
