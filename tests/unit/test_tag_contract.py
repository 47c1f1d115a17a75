"""The MLflow tag names are spelled once, in vdr_exp/tags.py: a literal anywhere else is a second spelling that
a rename would miss, orphaning the runs, saved views and leaderboards that find runs by it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from vdr_exp import tags
from vdr_exp.config import RunKind

PACKAGE = Path(tags.__file__).parent
# A tag named inside a search filter string: tags.run_kind = ..., tags.`mlflow.parentRunId` = ...
IN_FILTER = re.compile(r"\btags\.`?([A-Za-z_][\w.]*?)`?(?=[\s`=!<>]|$)")
# Calls that take a tag name, and where: client.set_tag(run_id, key, value) and mlflow.set_tag(key, value) alike.
TAG_CALLS = {"set_tag": -2, "set_experiment_tag": -2, "delete_tag": -1, "equals": 0, "tag_equals": 0, "is_set": 0}
TAG_DICT_CALLS = {"set_tags", "create_run", "start_run", "tracked_run"}


def _is_tag_name(value: object) -> bool:
    return isinstance(value, str) and (value in tags.NAMES or value in tags.PREFIXES)


def _tags_object(node: ast.AST) -> bool:
    """``tags``, ``run.data.tags``, ``self.tags``, a name ending in ``tags``: a mapping of tag names."""
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return name.endswith("tags")


def _string(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _dict_keys(node: ast.AST | None) -> list[ast.AST]:
    return [k for k in node.keys if k is not None] if isinstance(node, ast.Dict) else []


def _call_keys(call: ast.Call) -> list[ast.AST]:
    """The argument nodes of ``call`` that hold a tag name (or a dict of them)."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    found: list[ast.AST] = []
    if name in TAG_CALLS and len(call.args) > (TAG_CALLS[name] if TAG_CALLS[name] >= 0 else -TAG_CALLS[name] - 1):
        found.append(call.args[TAG_CALLS[name]])
    if name == "get" and _tags_object(func.value) and call.args:
        found.append(call.args[0])
    if name == "update" and _tags_object(func.value):
        found += [k for arg in call.args for k in _dict_keys(arg)]
    if name == "startswith" and call.args:
        found.append(call.args[0])
    if name in TAG_DICT_CALLS:
        found += [k for arg in call.args for k in _dict_keys(arg)]
    found += [k for kw in call.keywords if kw.arg == "tags" for k in _dict_keys(kw.value)]
    return found


def _literal_tags(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, name) of every tag name spelled as a literal where a tag is read, written or searched for."""
    hits: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        keys: list[ast.AST] = []
        if isinstance(node, ast.Call):
            keys = _call_keys(node)
        elif isinstance(node, ast.Subscript) and _tags_object(node.value):
            keys = [node.slice]
        elif isinstance(node, ast.Compare) and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops):
            keys = [node.left] if any(_tags_object(c) for c in node.comparators) else []
        elif isinstance(node, ast.Assign | ast.AnnAssign):  # tags = {...}; SEED_TAG = "seed" (a second spelling)
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            keys = _dict_keys(node.value) if any(_tags_object(t) for t in targets) else []
            keys += [node.value] if any(isinstance(t, ast.Name) and t.id.isupper() for t in targets) else []
        elif isinstance(node, ast.FunctionDef) and node.name.endswith("tags"):
            keys = [k for r in ast.walk(node) if isinstance(r, ast.Return) for k in _dict_keys(r.value)]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            hits += [(node.lineno, m) for m in IN_FILTER.findall(node.value) if _is_tag_name(m)]
            if node.value in tags.PREFIXES or (node.value.startswith("mlflow.") and _is_tag_name(node.value)):
                hits.append((node.lineno, node.value))  # distinctive wherever they appear: no other meaning
        hits += [(k.lineno, _string(k)) for k in keys if _is_tag_name(_string(k))]
    return sorted(set(hits))


def scan(source: str) -> list[tuple[int, str]]:
    return _literal_tags(ast.parse(source))


def test_no_tag_name_is_spelled_outside_tags_py():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == Path(tags.__file__):
            continue
        for line, name in scan(path.read_text()):
            found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {name!r}")
    assert not found, "tag names spelled as literals; import them from vdr_exp.tags:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        'x = run.data.tags.get("run_kind")',
        'x = tags["model_name"]',
        'mlflow.set_tag("accelerator", "cpu")',
        'client.set_tag(run_id, "error", "boom")',
        'mlflow.set_tags({"dataset": "d"})',
        'tags.update({"source_run_id": run_id})',
        'tags = {"sweep_params": "a"}',
        'def child_tags():\n    return {"mteb_task": "t"}',
        "q = \"tags.run_kind = 'evaluate'\"",
        "q = f\"tags.`mlflow.parentRunId` = '{run_id}'\"",
        'q = tracking.tag_equals("suite_root", root)',
        'ok = "error" in run.data.tags',
        'ok = key.startswith("skipped.")',
        'NOTE = "mlflow.note.content"',
        'SEED_TAG = "seed"',
        'prefix = "skipped_task."',
    ],
)
def test_the_scan_finds_a_reintroduced_literal(source):
    assert scan(source), source


@pytest.mark.parametrize(
    "source",
    [
        "x = run.data.tags.get(tags.RUN_KIND)",
        'mlflow.set_tag(tags.ACCELERATOR, "sweep")',  # a value that happens to equal a tag name is a value
        'mlflow.set_tags({tags.RUN_KIND: "benchmark"})',
        'kind = config.get("run_kind")',  # the config key of the same name is not a tag
        'row = {"dataset": "d", "run_kind": "train"}',  # a leaderboard column named after a tag
    ],
)
def test_the_scan_leaves_constants_values_and_columns_alone(source):
    assert not scan(source), source


def test_names_values_and_filters():
    assert tags.RUN_KIND in tags.NAMES and tags.SKIPPED_PREFIX not in tags.NAMES
    assert RunKind is tags.RunKind and {"sweep", "benchmark", "benchmark_task"} <= {str(k) for k in RunKind}
    assert tags.equals(tags.RUN_KIND, RunKind.evaluate) == "tags.`run_kind` = 'evaluate'"
    assert tags.equals(tags.MODEL_NAME, "it's") == 'tags.`model_name` = "it\'s"'
    assert tags.is_set(tags.SEED_GROUP) == "tags.`seed_group` != ''"
    with pytest.raises(tags.TagFilterError, match="both quote characters"):
        tags.equals(tags.MODEL_NAME, "'\"")


def test_every_tag_and_run_kind_is_documented():
    """docs/reference/runs.md lists what a run records; a tag added to the contract is added there too."""
    doc = (PACKAGE.parent / "docs" / "reference" / "runs.md").read_text()
    missing = [name for name in sorted(tags.NAMES | tags.PREFIXES) if f"`{name}" not in doc]
    missing += [f"run kind {kind}" for kind in tags.RunKind if str(kind) not in doc]
    assert not missing, f"add to docs/reference/runs.md (## Tags): {missing}"
