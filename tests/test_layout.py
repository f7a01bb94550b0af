"""The layout rules (README "Layout"): one package per modality, a core that imports none of them, no import
circles, and a README that names every module the tree holds.

Every import statement counts, at module level or inside a function or a TYPE_CHECKING block: a lazy
import is still a dependency, and a circle through one breaks as soon as someone moves it up.
"""
from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "include" / "synthchain"
MODALITY_PACKAGES = ("tabular", "text", "code")
# what each modality package may import besides the core and itself: code records are texts
MAY_ALSO_IMPORT = {"tabular": set(), "text": set(), "code": {"text"}}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The synthchain modules `name` imports, every statement counted."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "synthchain")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != "synthchain":
                continue
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in MODULES)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _area(module: str) -> str:
    """'tabular' / 'text' / 'code' / 'ops' for those packages' modules, else 'core'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in (*MODALITY_PACKAGES, "ops") else "core"


def test_the_layout_rules_see_real_imports():
    """The checks below read what they claim to read (a parser that found nothing would pass them all)."""
    assert {"synthchain.gates", "synthchain.generators", "synthchain.modalities"} <= GRAPH["synthchain.pipeline"]
    assert "synthchain.tabular.profile" in GRAPH["synthchain.tabular.modality"]
    assert "synthchain.text.tokens" in GRAPH["synthchain.code.modality"]
    assert len(MODULES) > 80


def test_no_import_circles():
    """Tarjan's strongly connected components over every import: each must be a single module."""
    index, low, on_stack, stack, circles = {}, {}, set(), [], []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH[v]):
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
                circles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


def test_the_core_imports_no_modality_and_no_ops():
    bad = sorted(f"{m} -> {d}" for m, deps in GRAPH.items() if _area(m) == "core" for d in deps
                 if _area(d) != "core")
    assert not bad, "core modules importing a modality package or ops:\n" + "\n".join(bad)


def test_the_registry_names_modalities_only_as_strings():
    """modalities.py imports nothing of synthchain; its tables point at modules that exist and load."""
    from synthchain import modalities

    assert GRAPH["synthchain.modalities"] == set()
    targets = [*modalities.MODALITIES.values(), *modalities.SOURCE_SCHEMES.values(),
               *(module for module, _ in modalities.MONITORS.values())]
    for target in targets:
        module, _, attr = target.partition(":")
        assert module in MODULES, target
        loaded = importlib.import_module(module)
        assert not attr or hasattr(loaded, attr), target
    for name in modalities.known_modalities():
        assert modalities.get_modality(name).name == name
        assert f"synthchain.{name}" in MODULES, f"modality {name} is not one package"


@pytest.mark.parametrize("package", MODALITY_PACKAGES)
def test_a_modality_imports_the_core_itself_and_what_it_declares(package):
    allowed = {"core", package, *MAY_ALSO_IMPORT[package]}
    bad = sorted(f"{m} -> {d}" for m, deps in GRAPH.items() if _area(m) == package for d in deps
                 if _area(d) not in allowed)
    assert not bad, f"{package} imports outside its allowance:\n" + "\n".join(bad)


def test_every_package_says_what_lives_there_and_what_it_may_import():
    for name, path in MODULES.items():
        if path.name != "__init__.py":
            continue
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        assert len(doc) > 60, f"{path.relative_to(ROOT)}: no docstring saying what lives there"
        assert re.search(r"\bimport", doc), f"{path.relative_to(ROOT)}: the docstring does not say what it may import"


def test_readme_layout_and_tree_agree():
    """Every module in the tree is named in README's Layout section, and every module named there exists.

    A bullet starting with a folder (`include/synthchain/tabular/`) names that folder's modules by file name;
    a sub-bullet names modules of its parent bullet's folder."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    named, folder = set(), None
    for line in section.splitlines():
        tokens = re.findall(r"`([^`]+)`", line)
        if re.match(r"^- `include/synthchain/[a-z_/]*`", line):
            folder = tokens[0]
            tokens = tokens[1:]
        elif line.startswith("- "):
            folder = None
        if folder:
            named.update(folder + t for t in tokens if re.fullmatch(r"[a-z_]+\.py", t))
    tree = {str(p.relative_to(ROOT)) for p in PKG.rglob("*.py")
            if "migrations" not in p.parts and p.name != "__init__.py"}
    assert len(named) > 60
    assert not sorted(tree - named), f"modules not named in README's Layout section: {sorted(tree - named)}"
    assert not sorted(named - tree), f"README's Layout section names modules that do not exist: {sorted(named - tree)}"
