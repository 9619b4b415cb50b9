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

The training tests' network (the one the handout prescribes, holding the tensors the worker
trained) is the grader's own code, not the provided package's (``hw3.testing.judge_code``); the
training tests reach it through ``hw3.cnn_experiment.measured_accuracy``.
"""
import ast
import builtins
import re

from hw3 import impl

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
# Modules whose import lets code reach into the process (frames, objects, other modules, the grader).
DENIED_IMPORTS = frozenset({
    "importlib", "ctypes", "builtins", "gc", "inspect", "types", "marshal", "pickle", "dill", "cloudpickle",
    "code", "codeop", "runpy", "unittest", "hw3", "autograder", "pytest", "_pytest", "gradescope_utils",
    # other threads and processes, where the worker's runtime guard does not look
    "threading", "_thread", "concurrent", "multiprocessing", "asyncio", "subprocess"})
# Parts of torch that change what its operations do (custom kernels, function and dispatch modes).
DENIED_TORCH = frozenset({"library", "overrides", "TorchFunctionMode", "TorchDispatchMode"})
SYS_DENIED = frozenset({"modules", "settrace", "setprofile", "_getframe", "meta_path", "path_hooks",
                        "path_importer_cache", "addaudithook"})
DUNDERS_DENIED = frozenset({
    "__dict__", "__globals__", "__builtins__", "__code__", "__closure__", "__getattribute__", "__setattr__",
    "__delattr__", "__subclasses__", "__bases__", "__base__", "__mro__", "__wrapped__", "__func__",
    "__defaults__", "__kwdefaults__", "__self__", "__loader__", "__spec__", "__torch_function__",
    "__torch_dispatch__", "f_globals", "f_locals", "f_back", "f_builtins", "gi_frame", "tb_frame", "cr_frame"})
DYNAMIC_CALLS = frozenset({"eval", "exec", "compile", "__import__", "globals", "vars", "locals", "breakpoint"})
PROTECTED = {"conv2d": ast.FunctionDef, "global_pool": ast.FunctionDef, "ConvNet": ast.ClassDef}
BUILTIN_NAMES = frozenset(dir(builtins))
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def source_of(name: str = "cnn", folder=None) -> str:
    """The text of the student's ``name``.py in the implementation folder under test (never imported)."""
    return (impl.impl_dir(folder) / f"{name}.py").read_text(encoding="utf-8", errors="replace")


def dotted(node) -> list:
    """``a.b.c`` as ["a", "b", "c"]; [] when the chain does not start at a name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id] + parts[::-1]
    return []


def root_name(node):
    """The name an attribute or subscript chain starts at (``torch`` in torch.nn.functional.x[0].y)."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def bound_names(node) -> set:
    """Every name bound anywhere inside ``node`` (arguments, assignments, loops, imports, nested defs)."""
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.arg):
            names.add(sub.arg)
        elif isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
            names.add(sub.id)
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and sub is not node:
            names.add(sub.name)
        elif isinstance(sub, ast.ExceptHandler) and sub.name:
            names.add(sub.name)
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in sub.names)
    return names


def module_level(tree):
    """The statements that run at import: the module's, and those inside its if/try/with/for blocks."""
    pending = list(tree.body)
    while pending:
        node = pending.pop(0)
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                pending.extend(s for s in getattr(node, field, []) if isinstance(s, (ast.stmt, ast.ExceptHandler)))


def header(node) -> list:
    """The parts of a statement that run as that statement (a compound statement's body is not)."""
    if isinstance(node, (ast.For, ast.AsyncFor)):
        return [node.target, node.iter]
    if isinstance(node, (ast.With, ast.AsyncWith)):
        return list(node.items)
    if isinstance(node, (ast.If, ast.While)):
        return [node.test]
    if isinstance(node, ast.Try) or (hasattr(ast, "TryStar") and isinstance(node, ast.TryStar)):
        return []
    if hasattr(ast, "Match") and isinstance(node, ast.Match):
        return [node.subject]
    return [node]


def bound_value(node) -> list:
    """What to follow for a name that the module-level statement ``node`` binds."""
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
        return [node.value] if node.value is not None else []
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return []
    return header(node) if not isinstance(node, ast.ExceptHandler) else [node.type] if node.type else []


class Source:
    """The student's file, parsed: its top-level definitions, its imports, and what it may not do."""

    def __init__(self, text: str, filename: str = "cnn.py"):
        self.filename = filename
        self.tree = ast.parse(text, filename=filename)
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                child.parent = node
        self.imports = {}        # local name -> dotted module path it stands for (or module.name)
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self.imports[alias.asname or alias.name.split(".")[0]] = (
                        alias.name if alias.asname else alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = f"{'.' * node.level}{node.module or ''}.{alias.name}"
        self.top = {}            # top-level name -> the statements that bind it at import
        for node in module_level(self.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.top.setdefault(node.name, []).append(node)
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    self.top.setdefault(alias.asname or alias.name.split(".")[0], []).append(node)
                continue
            if isinstance(node, ast.ExceptHandler):
                if node.name:
                    self.top.setdefault(node.name, []).append(node)
                continue
            for part in header(node):
                for name in ast.walk(part):
                    if isinstance(name, ast.Name) and isinstance(name.ctx, (ast.Store, ast.Del)) \
                            and not self.inside_function(name):
                        self.top.setdefault(name.id, []).append(node)
        # Names that stand for a module or one of its attributes: imports, and plain aliases of them.
        self.aliases = set(self.imports)
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None \
                    and self.is_module_chain(node.value):
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                    if isinstance(target, ast.Name):
                        self.aliases.add(target.id)

    def inside_function(self, node) -> bool:
        node = getattr(node, "parent", None)
        while node is not None:
            if isinstance(node, (*FUNCTIONS, ast.ClassDef, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                return True
            node = getattr(node, "parent", None)
        return False

    def is_module_chain(self, node) -> bool:
        parts = dotted(node)
        return bool(parts) and parts[0] in self.imports

    def module_of(self, name: str) -> str:
        """The dotted path an imported name stands for ("" if it is not an import)."""
        return self.imports.get(name, "")

    def definition(self, name: str, kind):
        nodes = self.top.get(name, [])
        return nodes[0] if len(nodes) == 1 and isinstance(nodes[0], kind) else None

    # --- what the whole file may not do -------------------------------------------------------

    def file_problems(self) -> list:
        """What the file does anywhere that could change, at run time, what its code or torch does."""
        problems = []
        for name, kind in PROTECTED.items():
            nodes = self.top.get(name, [])
            if len(nodes) > 1:
                problems.append((nodes[1].lineno, f"{name} is bound more than once at import (line "
                                                  f"{nodes[0].lineno} and line {nodes[1].lineno}): define it once"))
            elif nodes and not isinstance(nodes[0], kind):
                problems.append((nodes[0].lineno, f"{name} should be defined by a plain "
                                                  f"{'def' if kind is ast.FunctionDef else 'class'} statement"))
            elif nodes and nodes[0].decorator_list:
                problems.append((nodes[0].lineno, f"{name} has a decorator: define it without one"))
        for node in ast.walk(self.tree):
            problems += self.node_problems(node)
        return problems

    def node_problems(self, node) -> list:
        line = getattr(node, "lineno", 0)
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            names = sorted(set(node.names) & set(PROTECTED))
            if names:
                return [(line, f"a global statement rebinds {', '.join(names)}")]
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            paths = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
                [f"{node.module or ''}.{alias.name}" for alias in node.names])
            for path in paths:
                parts = path.split(".")
                if parts[0] in DENIED_IMPORTS or (node.level if isinstance(node, ast.ImportFrom) else 0):
                    return [(line, f"it imports {'.' * getattr(node, 'level', 0)}{path}, which the grader does not "
                                   f"allow in cnn.py (it can change other code at run time)")]
                if parts[0] == "torch" and (set(parts) & DENIED_TORCH or any(p.startswith("_") for p in parts)):
                    return [(line, f"it imports {path}, a part of PyTorch that changes what its operations do")]
                if parts[0] == "sys" and set(parts[1:]) & SYS_DENIED:
                    return [(line, f"it imports {path}")]
        if isinstance(node, ast.Attribute):
            parts = dotted(node)
            if node.attr in DUNDERS_DENIED:
                return [(line, f"it uses .{node.attr}, which reaches into other code's internals")]
            parent = getattr(node, "parent", None)
            outermost = not (isinstance(parent, ast.Attribute) and parent.value is node)
            if parts and parts[0] in self.imports and outermost:
                module = self.module_of(parts[0]).split(".")
                full = module + parts[1:]
                if full[0] == "torch" and (set(full) & DENIED_TORCH
                                           or any(p.startswith("_") and p not in ("__version__", "__name__")
                                                  for p in full[1:])):
                    return [(line, f"it uses {'.'.join(parts)}, a part of PyTorch that changes what its operations "
                                   f"do or is private")]
                if full[0] == "sys" and set(full[1:]) & SYS_DENIED:
                    return [(line, f"it uses {'.'.join(parts)}")]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in ("__torch_function__",
                                                                                        "__torch_dispatch__"):
            return [(line, f"it defines {node.name}, which changes what PyTorch's operations do")]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in DYNAMIC_CALLS - {"locals"}:
                return [(line, f"it calls {node.func.id}(), which runs or reaches code the grader cannot read")]
            if node.func.id in ("setattr", "delattr") and not (
                    node.args and isinstance(node.args[0], ast.Name) and node.args[0].id == "self"):
                return [(line, f"it calls {node.func.id}() on something other than self")]
        targets = []
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, (ast.Attribute, ast.Subscript)) and isinstance(sub.ctx, (ast.Store, ast.Del)):
                    root = root_name(sub)
                    if root in self.aliases or (root in self.top and any(
                            isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                            for n in self.top[root])):
                        return [(line, f"it changes {ast.unparse(sub)}, which belongs to "
                                       f"{'a module' if root in self.aliases else 'a definition of cnn.py'}")]
        return []

    # --- following code from a definition -----------------------------------------------------

    def reachable(self, start, skip=()) -> list:
        """The function and expression nodes ``start`` can reach by name (top-level functions,
        classes and variables of the file), ``start`` first; names in ``skip`` are not followed."""
        seen, order, pending = set(), [], [start]
        while pending:
            node = pending.pop(0)
            if id(node) in seen:
                continue
            seen.add(id(node))
            order.append(node)
            local = bound_names(node)
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and sub.id not in local \
                        and sub.id not in skip:
                    for target in self.top.get(sub.id, []):
                        pending.extend(bound_value(target))
        return order


def problems_text(problems) -> list:
    """Sorted, deduplicated "line N: ..." strings."""
    return [f"line {line}: {text}" for line, text in sorted(set(problems))]


def parsed(text: str, filename: str, name: str, kind) -> tuple:
    """(source, its file-wide problems, the definition of ``name``); when the file does not parse or
    lacks the definition, the definition is None and the problems are the final answer."""
    try:
        source = Source(text, filename)
    except SyntaxError as error:
        return None, [f"line {error.lineno}: cnn.py does not parse ({error.msg})"], None
    problems = source.file_problems()
    definition = source.definition(name, kind)
    if definition is None:
        what = "function" if kind is ast.FunctionDef else "class"
        return source, problems_text(problems) or [f"cnn.py defines no {what} {name}"], None
    return source, problems, definition


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
