"""Static rules of the package's structure, read from the source with ``ast`` (nothing is
imported or run):

(a) no function or method is longer than 80 lines of code (its docstring, blank lines and
    lines holding only a comment do not count; nested functions count towards the function
    that holds them);
(b) no import circle among the modules of ``fastgd``: every ``import`` and ``from ... import``
    of a fastgd module counts, wherever it stands (inside a function, under
    ``if TYPE_CHECKING:``), so a circle cannot be hidden by moving an import;
(c) no object reaches into another class's private attributes: ``x._name`` (or
    ``getattr(x, "_name")`` and the like) is allowed only where ``x`` is the object's own
    class or instance, or a module (see ``_reach_ins`` for the exact rule).

The rules are the ones the package holds itself to; each test lists every offence it finds.
"""

from __future__ import annotations

import ast
import io
import pathlib
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass, field

MAX_FUNCTION_LINES = 80


def _package_dir() -> pathlib.Path:
    source = pathlib.Path(__file__).resolve().parents[1] / "python" / "fastgd"
    if source.is_dir():
        return source
    import fastgd  # an installed package, tests run from elsewhere

    return pathlib.Path(fastgd.__file__).parent


PACKAGE = _package_dir()


@dataclass
class Module:
    name: str  # fastgd.models.linear; a package is named by its folder (fastgd.models)
    path: pathlib.Path
    source: str = field(repr=False)
    tree: ast.Module = field(repr=False)
    is_package: bool = False


def _modules() -> dict[str, Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        name = ".".join(parts)
        source = path.read_text(encoding="utf-8")
        out[name] = Module(name, path, source, ast.parse(source, str(path)), is_package)
    return out


MODULES = _modules()
# Compiled modules (described by their stub): import targets without imports of their own.
COMPILED = {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts) for p in PACKAGE.rglob("*.pyi")}


def _where(module: Module, line: int) -> str:
    return f"{module.path.relative_to(PACKAGE.parent)}:{line}"


# ---- (a) function length -------------------------------------------------------------------

def _code_lines(module: Module) -> set[int]:
    """Lines holding code: a token other than a comment or a line break (a string spanning
    several lines counts on each), less the docstrings of the module, classes and functions."""
    lines: set[int] = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENCODING, tokenize.ENDMARKER}
    for tok in tokenize.generate_tokens(io.StringIO(module.source).readline):
        if tok.type not in skip:
            lines.update(range(tok.start[0], tok.end[0] + 1))
    for node in ast.walk(module.tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                lines.difference_update(range(first.lineno, first.end_lineno + 1))
    return lines


def _qualified_functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.AST]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield f"{prefix}{node.name}", node
            yield from _qualified_functions(node, f"{prefix}{node.name}.<locals>.")
        elif isinstance(node, ast.ClassDef):
            yield from _qualified_functions(node, f"{prefix}{node.name}.")
        else:
            yield from _qualified_functions(node, prefix)


def long_functions(limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``path:line name (N lines)`` for every function over ``limit`` lines of code, from
    its ``def`` line (decorators excluded) to its last line."""
    found = []
    for module in MODULES.values():
        code = _code_lines(module)
        for name, node in _qualified_functions(module.tree):
            n = sum(1 for line in range(node.lineno, node.end_lineno + 1) if line in code)
            if n > limit:
                found.append(f"{_where(module, node.lineno)} {module.name}.{name} ({n} lines)")
    return found


def test_line_counting():
    source = '''
def f(a,
      b):
    """A docstring

    over lines."""
    # a comment

    x = """a string
    over lines"""
    return x  # trailing comment
'''
    module = Module("fastgd.probe", PACKAGE / "probe.py", source, ast.parse(source))
    assert sorted(_code_lines(module)) == [2, 3, 9, 10, 11]
    (name, node), = _qualified_functions(module.tree)
    assert name == "f" and (node.lineno, node.end_lineno) == (2, 11)


def test_no_function_longer_than_80_lines():
    found = long_functions()
    assert not found, f"{len(found)} function(s) over {MAX_FUNCTION_LINES} lines of code:\n" + "\n".join(found)


# ---- (b) import circles ----------------------------------------------------------------------

def _from_base(module: Module, node: ast.ImportFrom) -> str:
    """The absolute name of the module that ``from ... import`` reads from."""
    if not node.level:
        return node.module or ""
    base = module.name if module.is_package else module.name.rpartition(".")[0]
    for _ in range(node.level - 1):  # relative: from the module's package, up level - 1 more
        base = base.rpartition(".")[0]
    return f"{base}.{node.module}" if node.module else base


def _imported(module: Module, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The fastgd modules an import statement names (a name imported from a package that is
    not a module of its own counts as the package)."""
    known = set(MODULES) | COMPILED

    def owner(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.split(".")[0] == "fastgd":
                target = owner(alias.name)
                if target:
                    yield target
        return
    base = _from_base(module, node)
    if base.split(".")[0] != "fastgd":
        return
    for alias in node.names:
        target = owner(f"{base}.{alias.name}") if f"{base}.{alias.name}" in known else owner(base)
        if target:
            yield target


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported fastgd module: line of the first such import}."""
    graph: dict[str, dict[str, int]] = {name: {} for name in MODULES}
    for module in MODULES.values():
        for node in ast.walk(module.tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _imported(module, node):
                    if target != module.name and target in MODULES:
                        graph[module.name].setdefault(target, node.lineno)
    return graph


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _shortest_circle(graph: dict[str, dict[str, int]], component: list[str]) -> list[str]:
    """A shortest circle through the component's first module, as a list of modules."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v]):
                if w == start:
                    return paths[v] + [start]
                if w in members and w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError("a strongly connected component without a circle")


def import_circles() -> list[str]:
    graph = import_graph()
    found = []
    for component in _cycles(graph):
        circle = _shortest_circle(graph, component)
        steps = " -> ".join(f"{a} (line {graph[a][b]})" for a, b in zip(circle, circle[1:]))
        found.append(f"{', '.join(component)}: e.g. {steps} -> {circle[-1]}")
    return found


def test_import_graph_reading():
    graph = import_graph()
    assert "fastgd.optim" in graph["fastgd"] and "fastgd.models" in graph["fastgd"]
    # "from fastgd import schedules" names the module, "from fastgd.models import X" the package
    assert "fastgd.schedules" in graph["fastgd.cli"] and "fastgd.models" in graph["fastgd.cli"]
    assert "fastgd._core" not in graph["fastgd.runtime"]  # compiled: no node of its own
    toy = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3, "d": 4}, "d": {}, "e": {"e": 5}}
    assert _cycles(toy) == [["a", "b", "c"]]
    assert _shortest_circle(toy, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_no_import_circle():
    found = import_circles()
    assert not found, "import circle(s) among fastgd's modules:\n" + "\n".join(found)


# ---- (c) private attributes of other classes -------------------------------------------------

# Underscored names that are public by design: namedtuple's API.
PUBLIC_UNDERSCORED = {"_asdict", "_replace", "_fields", "_field_defaults", "_make"}
# x._name where x is a module from outside fastgd, allowed by name ("module._name"): os._exit
# is public, named so by convention (fastgd.distributed leaves with it after MPI_Abort).
ALLOWED_OUTSIDE: set[str] = {"os._exit"}
_ATTR_FUNCTIONS = {"getattr", "setattr", "hasattr", "delattr"}


def _attr_call(node: ast.AST) -> bool:
    """``getattr(x, "name", ...)`` and the like, with the name written out."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _ATTR_FUNCTIONS \
        and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__")) \
        and name not in PUBLIC_UNDERSCORED


def _bound_imports(module: Module) -> tuple[dict[str, str], set[str]]:
    """(name -> the module an import binds to it; names an import binds to anything else),
    over every import of the module."""
    modules: dict[str, str] = {}
    others: set[str] = set()
    known = set(MODULES) | COMPILED
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    modules[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    modules[top] = top
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(module, node)
            for alias in node.names:
                bound = alias.asname or alias.name
                if f"{base}.{alias.name}" in known:
                    modules[bound] = f"{base}.{alias.name}"
                else:
                    others.add(bound)
    return modules, others


def _class_names() -> dict[str, set[str]]:
    """Class name -> the private names it owns: methods and class attributes it defines, and
    names it reads or writes through its own ``self``/``cls`` (first parameter of a method),
    with those of its bases found among fastgd's classes (by name)."""
    own: dict[str, set[str]] = {}
    bases: dict[str, set[str]] = {}
    for module in MODULES.values():
        for cls in (n for n in ast.walk(module.tree) if isinstance(n, ast.ClassDef)):
            names = own.setdefault(cls.name, set())
            bases.setdefault(cls.name, set()).update(
                b.id if isinstance(b, ast.Name) else b.attr
                for b in cls.bases if isinstance(b, (ast.Name, ast.Attribute)))
            for node in cls.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(node.name)
                elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    names.update(t.id for t in targets if isinstance(t, ast.Name))
            for method in (n for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
                first = _first_parameter(method)
                for node in ast.walk(method):
                    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                            and node.value.id == first:
                        names.add(node.attr)
                    elif _attr_call(node) and isinstance(node.args[0], ast.Name) and node.args[0].id == first:
                        names.add(node.args[1].value)
    closed: dict[str, set[str]] = {}

    def resolve(name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        if name not in closed:
            result = set(own.get(name, ()))
            for base in bases.get(name, ()):
                if base not in seen:
                    result |= resolve(base, seen | {name})
            closed[name] = result
        return closed[name]

    return {name: resolve(name) for name in own}


def _first_parameter(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    args = fn.args.posonlyargs + fn.args.args
    static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in fn.decorator_list)
    return args[0].arg if args and not static else None


@dataclass
class _Scope:
    cls: ast.ClassDef | None = None  # the innermost class whose method (or its closure) this is
    own: set[str] = field(default_factory=set)  # self, cls (first parameters of that class's methods)


def _own_object(value: ast.expr, scope: _Scope) -> bool:
    """self, cls, super(), type(self), self.__class__, or the class by its name."""
    if isinstance(value, ast.Name):
        return value.id in scope.own or (scope.cls is not None and value.id == scope.cls.name)
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
        if value.func.id == "super":
            return True
        if value.func.id == "type" and len(value.args) == 1:
            return _own_object(value.args[0], scope)
    if isinstance(value, ast.Attribute) and value.attr == "__class__":
        return _own_object(value.value, scope)
    return False


def _reach_ins(module: Module, class_names: dict[str, set[str]]) -> Iterator[str]:
    """``x._name`` (``getattr/setattr/hasattr/delattr(x, "_name")`` alike) is allowed when
    ``x`` is

    * the object's own: ``self``/``cls`` (a method's first parameter, also in its closures),
      ``super()``, ``type(self)``, ``self.__class__``, or the enclosing class by name;
    * a fastgd module bound by an import (a module's private helpers are the package's own
      business), or ``module._name`` of :data:`ALLOWED_OUTSIDE`;
    * a local name (not an import) inside a class that owns ``_name`` (defines it, or uses
      it through ``self``, itself or in a base class): another instance of the same class,
      such as a copy made in a method.

    Everything else is a reach-in: a function outside any class reading an argument's private
    attribute, a class using another class's private attribute by the class's name, a method
    using a private name that its class does not own."""
    modules, imported = _bound_imports(module)
    package_modules = set(MODULES) | COMPILED

    def check(value: ast.expr, name: str, line: int, scope: _Scope, how: str) -> Iterator[str]:
        if not _private(name) or _own_object(value, scope):
            return
        if isinstance(value, ast.Name):
            bound = modules.get(value.id)
            if bound is not None and (bound in package_modules or f"{bound}.{name}" in ALLOWED_OUTSIDE):
                return
            if value.id not in imported and bound is None and scope.cls is not None \
                    and name in class_names.get(scope.cls.name, ()):
                return
        yield f"{_where(module, line)} {how}"

    def walk(node: ast.AST, scope: _Scope) -> Iterator[str]:
        for child in ast.iter_child_nodes(node):
            inner = scope
            if isinstance(child, ast.ClassDef):
                inner = _Scope(child, set())
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and isinstance(node, ast.ClassDef):
                first = _first_parameter(child)
                inner = _Scope(node, {first} if first else set())
            if isinstance(child, ast.Attribute):
                yield from check(child.value, child.attr, child.lineno, scope, ast.unparse(child))
            elif _attr_call(child):
                assert isinstance(child, ast.Call) and isinstance(child.func, ast.Name)
                yield from check(child.args[0], child.args[1].value, child.lineno, scope,
                                 f"{child.func.id}({ast.unparse(child.args[0])}, {child.args[1].value!r})")
            yield from walk(child, inner)

    yield from walk(module.tree, _Scope())


def private_reach_ins() -> list[str]:
    class_names = _class_names()
    return [hit for module in MODULES.values() for hit in _reach_ins(module, class_names)]


def test_reach_in_rule():
    source = '''
import numpy as np
from fastgd import _core, training
from fastgd.optim import SGD

def helper(opt, x):
    training._loop(x)            # a fastgd module's private helper: allowed
    _core.step(x)                # allowed (and not private anyway)
    np._NoValue                  # an outside module's private name: reach-in
    opt._group_state             # an argument's private attribute: reach-in
    SGD._validate_group(opt)     # another class's by its name: reach-in
    getattr(opt, "_plan")        # the same, through getattr: reach-in
    opt.__dict__, opt._asdict()  # dunders and namedtuple's API: allowed

class Stream:
    _limit = 3

    def __init__(self):
        self._kept = None

    def copy(me):
        out = type(me)()
        out._kept = me._kept     # its own class's attribute on a copy: allowed
        Stream._limit, type(me)._limit, super()._x
        def inner(other):
            return me._kept, other._kept, other._plan   # the last one: Stream has no _plan
        return out
'''
    module = Module("fastgd.probe", PACKAGE / "probe.py", source, ast.parse(source))
    names = _class_names()
    names["Stream"] = {"_limit", "_kept", "copy"}
    found = [hit.split(" ", 1)[1] for hit in _reach_ins(module, names)]
    assert found == ["np._NoValue", "opt._group_state", "SGD._validate_group", "getattr(opt, '_plan')",
                     "other._plan"]


def test_no_reach_into_private_attributes():
    found = private_reach_ins()
    assert not found, "private attribute(s) of another class:\n" + "\n".join(found)
