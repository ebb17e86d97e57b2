"""python/deltaprop/_core.pyi stays in step with the extension: every public name the extension
exports (and its submodule `ops`) is in the stub and vice versa; each function takes the same
parameters (names, kinds, defaults); the Engine classes have the same members. The Engine's
parameters are not compared: its signature changes with the network's features, and the
stub follows it on merge."""

from __future__ import annotations

import ast
import types
from pathlib import Path

import pytest

import deltaprop as dp
from deltaprop import _core

STUB = Path(dp.__file__).with_name("_core.pyi")
TREE = ast.parse(STUB.read_text())
CLASSES = {node.name: node for node in TREE.body if isinstance(node, ast.ClassDef)}


def public(names) -> set[str]:
    return {n for n in names if not n.startswith("_")}


def stub_names(body) -> set[str]:
    """Names a stub body defines: functions (a property's setter counts once), classes and
    annotated variables."""
    names = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def stub_functions(body) -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in body if isinstance(node, ast.FunctionDef)}


def submodule_class(name: str) -> ast.ClassDef:
    """The class a stub annotates the submodule `name` with (`ops: _Ops`)."""
    for node in TREE.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == name:
            return CLASSES[ast.unparse(node.annotation)]
    raise AssertionError(f"the stub does not declare the submodule {name}")


def parameters(args: ast.arguments) -> list[tuple]:
    """(name, kind, default) of each parameter, `self` left out; defaults as Python values."""
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    out = [(a.arg, "positional", d) for a, d in zip(positional, defaults)]
    out += [(a.arg, "keyword", d) for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    return [(name, kind, "required" if d is None else ast.literal_eval(d))
            for name, kind, d in out if name != "self"]


def runtime_parameters(function) -> list[tuple]:
    """The parameters pybind11 writes on the first line of a function's docstring."""
    signature = function.__doc__.splitlines()[0]
    return parameters(ast.parse(f"def {signature}: ...").body[0].args)


SUBMODULES = sorted(n for n in public(dir(_core))
                    if isinstance(getattr(_core, n), types.ModuleType))
ENGINES = sorted(n for n in public(dir(_core)) if n.startswith("Engine_"))


def test_the_stub_names_what_the_extension_exports():
    assert public(stub_names(TREE.body)) == public(dir(_core))


@pytest.mark.parametrize("name", SUBMODULES)
def test_the_stub_names_what_each_submodule_exports(name):
    assert public(stub_names(submodule_class(name).body)) == public(dir(getattr(_core, name)))


def module_functions():
    yield from ((name, getattr(_core, name), node) for name, node in
                stub_functions(TREE.body).items() if not name.startswith("_"))
    for sub in SUBMODULES:
        yield from ((f"{sub}.{name}", getattr(getattr(_core, sub), name), node) for name, node in
                    stub_functions(submodule_class(sub).body).items())


@pytest.mark.parametrize("name, function, node", list(module_functions()),
                         ids=[name for name, _, _ in module_functions()])
def test_each_function_takes_the_same_parameters(name, function, node):
    assert parameters(node.args) == runtime_parameters(function), name


def class_body(name: str) -> list:
    """A stub class's statements with those of its stub base classes (`_Engine[np.float32]`)."""
    node = CLASSES[name]
    body = list(node.body)
    for base in node.bases:
        base_name = ast.unparse(base.value if isinstance(base, ast.Subscript) else base)
        if base_name in CLASSES:
            body += class_body(base_name)
    return body


@pytest.mark.parametrize("name", ENGINES)
def test_the_engine_classes_have_the_same_members(name):
    cls = getattr(_core, name)
    body = class_body(name)
    assert public(stub_names(body)) | {"__init__"} == public(vars(cls)) | {"__init__"}
    assert "__init__" in stub_names(body)
    for member in public(vars(cls)):  # methods are methods and properties are properties
        is_property = isinstance(vars(cls)[member], property)
        decorated = [ast.unparse(d) for n in body if isinstance(n, ast.FunctionDef)
                     and n.name == member for d in n.decorator_list]
        assert ("property" in decorated) == is_property, member


def test_the_package_is_marked_typed():
    assert STUB.with_name("py.typed").is_file()
