"""The student's cnn.py parsed, never imported (``Source``): its top-level definitions, its
imports and the module aliases made from them, what follows a name to the code it stands for
(``Source.reachable``), and what no part of the file may do (``Source.file_problems``: imports and
attributes that reach into the process or change what torch does, rebinding the graded
definitions). hw3/cnn_judge.py checks the two graded claims on it.
"""
import ast

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
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


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
