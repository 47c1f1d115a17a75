"""The layer rules a linter does not check. An import inside a function is there only to keep a command's start
light (a torch-free ``--help``), to load an optional extra, or to break an import cycle, and says which in a
comment (docs/reference/layout.md); any other import belongs at the top of its module, where a reader looks."""

from __future__ import annotations

import ast
from pathlib import Path

import vdr_exp

PACKAGE = Path(vdr_exp.__file__).parent
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
IMPORTS = (ast.Import, ast.ImportFrom)


def _function_imports(tree: ast.Module) -> set[ast.stmt]:
    return {
        node for fn in ast.walk(tree) if isinstance(fn, FUNCTIONS) for node in ast.walk(fn) if isinstance(node, IMPORTS)
    }


def _runs(tree: ast.Module, inside: set[ast.stmt]) -> list[list[ast.stmt]]:
    """Consecutive function-level imports of one block: one comment above the first covers them all."""
    runs = []
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            block = getattr(node, field, None)
            run: list[ast.stmt] = []
            for statement in [*block, None] if isinstance(block, list) else []:
                if statement in inside:
                    run.append(statement)
                elif run:
                    runs.append(run)
                    run = []
    return runs


def uncommented_function_imports(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """``file:line`` of every import inside a function with no comment on its lines nor above its block."""
    lines = path.read_text().splitlines()
    tree = ast.parse("\n".join(lines))
    found = []
    for run in _runs(tree, _function_imports(tree)):
        above = lines[run[0].lineno - 2].strip()
        for node in run:
            if not above.startswith("#") and not any("#" in line for line in lines[node.lineno - 1 : node.end_lineno]):
                found.append(f"{path.relative_to(root)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    return found


def test_every_function_level_import_says_why():
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) for hit in uncommented_function_imports(path)]
    assert not found, (
        "imports inside functions without a comment saying why (a light --help, an optional extra, a cycle); "
        "move each to the top of its module or add the comment:\n" + "\n".join(found)
    )


def test_the_check_finds_an_uncommented_import(tmp_path):
    module = tmp_path / "vdr_exp" / "sample.py"
    module.parent.mkdir()
    module.write_text(
        "def light():\n"
        "    # torch loads only when a job runs: --help stays instant\n"
        "    import torch\n"
        "\n"
        "    from vdr_exp import models\n"
        "\n"
        "    return torch, models\n"
        "\n"
        "\n"
        "def heavy():\n"
        "    x = 1\n"
        "    import json\n"
        "\n"
        "    return json, x\n"
    )
    found = uncommented_function_imports(module, tmp_path)
    assert [hit.split(": ")[0] for hit in found] == ["vdr_exp/sample.py:12"]
