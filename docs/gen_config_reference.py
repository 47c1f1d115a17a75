"""The config reference of the docs site, written from the typed schema and the YAML in conf/ and sweeps/.

Hand-written reference pages drift from the code; these are generated on every `mkdocs build` (the
mkdocs-gen-files plugin runs this file), so a new key, group or option shows up with its type, bounds,
default and comment the day it is added. `pages()` is pure (path -> Markdown) so tests/unit/test_docs.py can check
that every config group and schema field is listed without building the site.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run by path (mkdocs-gen-files, tests): its sibling too
from schema_fields import docstring, entry_points, field_rows, sections, top_level_keys

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SWEEPS = ROOT / "sweeps"
OUT = "reference/config"
CHECK_WORDS = {"load_tested": "architecture load-tested offline", "remote_code": "needs remote code: desk-checked"}
CHECK_WORDS |= {"desk_checked": "desk-checked", "fixture": "offline fixture"}


def option_files() -> dict[str, list[Path]]:
    """Config group -> its option files: every folder of conf/ with YAML in it, and `sweep` from sweeps/."""
    groups: dict[str, list[Path]] = {}
    for path in sorted(CONF.rglob("*.yaml")):
        if path.parent != CONF:
            groups.setdefault(path.parent.relative_to(CONF).as_posix(), []).append(path)
    groups["sweep"] = sorted(SWEEPS.glob("*/sweep/*.yaml"))
    return groups


def header(path: Path) -> tuple[str, str]:
    """(command, description) from a config file's opening comments: its first `python -m vdr_exp.` line (up to
    a remark set off by two spaces) and the prose around it (source lists and dates left out)."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        if not re.match(r"#\s*@", line):
            lines.append(line.lstrip("#").strip())
    commands = [line for line in lines if line.startswith("python -m vdr_exp.")]
    command = re.split(r"\s{2,}", commands[0])[0] if commands else ""
    rest = [line for line in lines if not line.startswith(("python -m", "- ", "http"))]
    description = " ".join(rest)
    return command, description.split(" Sources:")[0].split(" Desk-checked ")[0]


def _cell(text: str) -> str:
    """A table cell: pipes outside code spans escaped (inside them the table extension already ignores them)."""
    parts = text.split("`")
    return "`".join(part.replace("|", "\\|") if i % 2 == 0 else part for i, part in enumerate(parts))


def table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(cell) for cell in cells) + " |" for cells in rows]
    return "\n".join(lines)


def defaults_of(entry: str) -> dict[str, str | None]:
    """Group -> default option in the primary config of an entry point (conf/<entry>.yaml's defaults list)."""
    found: dict[str, str | None] = {}
    for item in yaml.safe_load((CONF / f"{entry}.yaml").read_text())["defaults"]:
        if isinstance(item, dict):
            found.update(item)
    return found


def _used_by(group: str) -> str:
    section = sections().get(group)
    names = []
    for entry, schema in entry_points().items():
        listed = group in defaults_of(entry) or (
            section is not None and group in {f.name for f in dataclasses.fields(schema)}
        )
        if group == "sweep":
            listed = (SWEEPS / entry).is_dir()
        if listed:
            default = defaults_of(entry).get(group)
            names.append(f"`vdr_exp.{entry}`" + (f" (default `{default}`)" if default else ""))
    return ", ".join(names) or "every entry point"


def options_part(group: str, files: list[Path]) -> list[str]:
    """The options table of a group and each option's YAML, folded."""
    rows, folds = [], []
    for path in files:
        command, description = header(path)
        option = path.stem if group != "sweep" else f"{path.stem} ({path.parts[-3]})"
        rows.append((f"`{option}`", description, f"`{command}`" if command else ""))
        shown = path.relative_to(ROOT).as_posix()
        body = "\n".join("    " + line for line in ["```yaml", *path.read_text().splitlines(), "```"])
        folds.append(f'??? note "{shown}"\n\n{body}\n')
    return ["## Options", "", table(("option", "what it is", "a command that uses it"), rows), "", *folds]


def keys_part(group: str, cls: type) -> list[str]:
    rows = field_rows(cls, f"{group}.")
    intro = docstring(cls)
    head = ("key", "type", "default", "bounds", "what it does")
    return ["## Keys", "", intro, "", table(head, [(f"`{k}`", f"`{t}`", d, b, x) for k, t, d, b, x in rows]), ""]


def models_part() -> list[str]:
    """The recipe's 20-model table, from the compare_baselines sweep's model list and each model's config."""
    sweep = yaml.safe_load((SWEEPS / "evaluate/sweep/compare_baselines.yaml").read_text())
    names = [m.strip() for m in sweep["hydra"]["sweeper"]["params"]["model"].split(",")]
    configs = {name: yaml.safe_load((CONF / "model" / f"{name}.yaml").read_text()) for name in names}
    rows = []
    for name in sorted(names, key=lambda n: -configs[n]["published_ndcg_at_10"]):
        config = configs[name]
        size = config["published_params"] / 1e9
        checked = CHECK_WORDS[config["check"]]
        if config.get("unsupported"):
            checked += "; **not loadable as published**: the job fails in one line"
        rows.append(
            (
                f"`{name}`",
                f"`{config['path']}`",
                config["architecture"],
                f"{size:.{1 if size >= 1 else 2}f}B",
                f"{config['published_ndcg_at_10']:.3f}",
                checked,
                f"`python -m vdr_exp.evaluate model={name}`",
            )
        )
    head = (
        "model config",
        "hub id",
        "architecture",
        "params",
        "published NDCG@10",
        "how it was checked",
        "evaluate it",
    )
    intro = (
        "The models of the recipe's results table (`sweep=compare_baselines`), best first. Each config names "
        "the source of every value; `check` says how far it was verified (see [Models](../models.md))."
    )
    return ["## The recipe's models", "", intro, "", table(head, rows), ""]


def group_page(group: str, files: list[Path], cls: type | None) -> str:
    parts = [f"# `{group}`", "", f"Used by: {_used_by(group)}. Pick an option with `{group}=<option>`"]
    parts[-1] += "; change one key with `<key>=<value>`." if cls else "."
    parts.append("")
    if files:
        parts += options_part(group, files)
    if cls is not None:
        parts += keys_part(group, cls)
    if group == "model":
        parts += models_part()
    return "\n".join(parts) + "\n"


def page_name(group: str) -> str:
    return f"{OUT}/{group.replace('/', '-')}.md"


def index_page(groups: list[str]) -> str:
    rows = []
    for group in groups:
        link = f"[`{group}`]({page_name(group).removeprefix(OUT + '/')})"
        count = len(option_files().get(group, []))
        rows.append((link, _used_by(group), str(count) if count else "keys only"))
    key_rows = []
    for name, schema in top_level_keys().items():
        used = ", ".join(f"`{e}`" for e, s in entry_points().items() if name in {g.name for g in dataclasses.fields(s)})
        _, kind, default, bounds, text = field_rows_of(schema, name)
        key_rows.append((f"`{name}`", f"`{kind}`", default, bounds, used, text))
    return "\n".join(
        [
            "# Config reference",
            "",
            "Generated from the typed run schemas (`vdr_exp/config/schema.py` with `schema_inputs.py`, and each entry point's own) and the YAML in `conf/` and `sweeps/` on every "
            "docs build, so it lists exactly what the code accepts. `group=option` picks a file of a group; "
            "`group.key=value` changes one value; a misspelled key, a wrong type or an out-of-range value is refused "
            "before anything loads.",
            "",
            *entry_points_part(),
            "## Groups and sections",
            "",
            table(("group", "used by", "option files"), rows),
            "",
            "## Top-level keys",
            "",
            table(("key", "type", "default", "bounds", "entry points", "what it does"), key_rows),
            "",
        ]
    )


def entry_points_part() -> list[str]:
    """One row per entry point: its primary config, schema, a command and the groups it picks by default."""
    rows = []
    for entry, schema in entry_points().items():
        path = CONF / f"{entry}.yaml"
        command, _ = header(path)
        picks = ", ".join(f"`{g}={o}`" for g, o in defaults_of(entry).items() if o is not None)
        rows.append(
            (
                f"`vdr_exp.{entry}`",
                f"`{path.relative_to(ROOT).as_posix()}`",
                f"`{schema.__name__}`",
                f"`{command}`" if command else "",
                picks,
            )
        )
    head = ("entry point", "primary config", "schema", "a command", "defaults")
    return ["## Entry points", "", table(head, rows), ""]


def field_rows_of(schema: type, name: str) -> tuple[str, str, str, str, str]:
    (row,) = [r for r in field_rows(schema, "") if r[0] == name]
    return row


def pages() -> dict[str, str]:
    """Every generated page, path (relative to docs/) -> Markdown."""
    files, schema_sections = option_files(), sections()
    groups = sorted(set(files) | set(schema_sections))
    found = {f"{OUT}/index.md": index_page(groups)}
    for group in groups:
        found[page_name(group)] = group_page(group, files.get(group, []), schema_sections.get(group))
    return found


def write_pages() -> None:
    import mkdocs_gen_files

    for path, text in pages().items():
        with mkdocs_gen_files.open(path, "w") as out:
            out.write(text)
        source = "docs/gen_config_reference.py"
        mkdocs_gen_files.set_edit_path(path, source)


if __name__ in {"__main__", "<run_path>"}:
    write_pages()
