"""The layers import in one direction (docs/ARCHITECTURE.md): every `import valuelab...` in every module,
function-level imports included, points to the module's own layer or one below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import valuelab

ROOT = Path(valuelab.__file__).parent

# Lowest first. A module belongs to the first layer whose prefix it matches (longest prefix wins).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("valuelab.errors", "valuelab.yamlfile", "valuelab.devices", "valuelab.prompts", "valuelab.figures",
              "valuelab.paths")),
    ("items", ("valuelab.items", "valuelab.dilemmas", "valuelab.surveys")),
    ("models", ("valuelab.models",)),
    ("store", ("valuelab.store", "valuelab.executor", "valuelab.manifest")),
    ("elicit", ("valuelab.elicit",)),
    ("fit", ("valuelab.fit",)),
    ("stats", ("valuelab.stats", "valuelab.result")),
    ("frameworks", ("valuelab.frameworks",)),
    ("analyses", ("valuelab.analyses",)),
    ("report", ("valuelab.report",)),
    ("top", ("valuelab.audits", "valuelab.estimate", "valuelab.control", "valuelab.cli", "valuelab")),
]
RANK = {name: k for k, (name, _) in enumerate(LAYERS)}


def layer(module: str) -> str:
    matches = [(len(prefix), name) for name, prefixes in LAYERS for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    if not matches:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS and docs/ARCHITECTURE.md")
    return max(matches)[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported valuelab module) for every import statement in the file, at any depth."""
    found = []
    package = module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("valuelab")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            if base.startswith("valuelab"):
                # `from valuelab import stats` imports the module valuelab.stats, not the package facade
                found += [(node.lineno, f"{base}.{a.name}" if base == "valuelab" and is_module(a.name) else base)
                          for a in node.names]
    return sorted(set(found))


def is_module(name: str) -> bool:
    return (ROOT / f"{name}.py").is_file() or (ROOT / name / "__init__.py").is_file()


MODULES = sorted(p for p in ROOT.rglob("*.py") if "data" not in p.relative_to(ROOT).parts)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_imports_point_down(path: Path):
    own = layer(module_name(path))
    if own == "top" and module_name(path) == "valuelab":
        return  # the package facade re-exports the public API from every layer
    wrong = [f"line {line}: {target} ({layer(target)})" for line, target in imports(path)
             if RANK[layer(target)] > RANK[own]]
    assert not wrong, f"{module_name(path)} ({own}) imports from a higher layer: " + "; ".join(wrong)


def test_a_violation_is_caught(tmp_path):
    """The check itself: an elicit module importing an analysis is reported."""
    assert RANK[layer("valuelab.analyses.transitivity")] > RANK[layer("valuelab.elicit.pairwise")]
    assert layer("valuelab.fit.utilities") == "fit" and layer("valuelab.stats") == "stats"
    with pytest.raises(AssertionError, match="belongs to no layer"):
        layer("valuelab_other")
