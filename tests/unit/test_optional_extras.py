"""A lean install (``pip install vdr-exp``) has no matplotlib, Optuna or Playwright: what needs them says so in
one line, and what merely comes with them (figures beside a table) is skipped with one warning.

Each test hides the package the way a missing install does (``sys.modules[name] = None`` makes its import
fail) and runs the real code path; the same path with the package present is checked too, so a test whose
simulation stopped working fails instead of passing on nothing. That the leaderboard and reports import no
optional package at all is checked in a fresh interpreter (tests/e2e/test_packaging.py).
"""

from __future__ import annotations

import importlib.util
import logging
import random
import shutil
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_module
from hydra.core.config_store import ConfigStore

from vdr_exp import extras
from vdr_exp.config import CONFIG_MODULE, register_configs
from vdr_exp.runtime import failures

ROOT = Path(__file__).resolve().parents[2]
PLOTS_HINT = "pip install 'vdr-exp[plots]'"


@pytest.fixture
def without(monkeypatch):
    """Hide packages as if they were not installed; warnings start afresh."""
    monkeypatch.setattr(extras, "_warned", set())

    def hide(*names: str) -> None:
        for name in names:
            monkeypatch.setitem(sys.modules, name, None)

    return hide


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == extras.__name__]


def test_the_core_dependencies_leave_out_plots_optuna_playwright_and_the_mlflow_server():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {d.split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip().lower() for d in project["dependencies"]}
    assert not core & {"matplotlib", "adjusttext", "hydra-optuna-sweeper", "optuna", "playwright", "mlflow"}
    assert {"mlflow-skinny", "sqlalchemy", "alembic"} <= core  # the default SQLite store
    extras_ = project["optional-dependencies"]
    assert {"plots", "optuna", "ui", "server", "launchers", "dev", "docs", "mteb"} <= set(extras_)


def test_a_leaderboard_without_matplotlib_is_written_without_its_plots_and_one_warning(
    tmp_path, board, without, caplog
):
    from vdr_exp.reports import leaderboard

    with_plots = leaderboard.write(board, tmp_path / "with", "b")
    assert with_plots.size_plot.is_file()

    without("matplotlib", "matplotlib.pyplot")
    for _ in range(2):
        written = leaderboard.write(board, tmp_path / "without", "b")
    assert written.size_plot is None and written.matryoshka_plot is None
    assert written.csv.is_file() and written.markdown.is_file()
    assert not list((tmp_path / "without").glob("*.png"))
    assert _warnings(caplog) == [f"the leaderboard's plots skipped, matplotlib is not installed: {PLOTS_HINT}"]


def test_without_adjusttext_the_plots_are_skipped_too(tmp_path, board, without, caplog):
    from vdr_exp.reports import leaderboard

    without("adjustText")
    assert leaderboard.write(board, tmp_path, "b").size_plot is None
    assert _warnings(caplog) == [f"the leaderboard's plots skipped, adjustText is not installed: {PLOTS_HINT}"]


def test_a_suite_table_without_matplotlib_has_no_heatmap(tmp_path, without, caplog):
    from vdr_exp.suites import report

    table = pd.DataFrame({"TaskA": [0.5], "mean": [0.5]}, index=pd.Index(["m"], name="model"))
    without("matplotlib", "matplotlib.pyplot")
    files = report.write(table, tmp_path, "suite", "ndcg_at_10")
    assert files.heatmap is None and files.csv.is_file() and files.markdown.is_file()
    assert _warnings(caplog) == [f"the suite's heatmap skipped, matplotlib is not installed: {PLOTS_HINT}"]


def test_fixture_pages_are_drawn_with_pillows_font_without_matplotlib(without, caplog):
    from vdr_exp.fixtures import pages, render

    spec = pages.random_spec(random.Random(0))
    render.font_dir.cache_clear()
    render._font.cache_clear()
    try:
        assert render.font_dir() is not None  # the real fonts, with matplotlib
        render.font_dir.cache_clear()
        without("matplotlib")
        assert render.font_dir() is None
        assert render._font("sans", True, 12) is not None  # Pillow's default font
        assert render.render_page(spec).size == (248, 352)
        assert len(_warnings(caplog)) == 1 and PLOTS_HINT in _warnings(caplog)[0]
    finally:
        render.font_dir.cache_clear()  # later tests draw with the DejaVu fonts again
        render._font.cache_clear()


def test_sweep_lr_search_without_the_optuna_sweeper_ends_in_one_line(monkeypatch):
    register_configs()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        composed = compose("train", overrides=["sweep=lr_search"], return_hydra_config=True)
    assert "OptunaSweeper" in composed.hydra.sweeper._target_  # installed: it composes

    monkeypatch.delitem(ConfigStore.instance().repo["hydra"]["sweeper"], "optuna.yaml")  # what the plugin registers
    monkeypatch.setitem(sys.modules, "hydra_plugins.hydra_optuna_sweeper", None)
    with pytest.raises(Exception) as raised, initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        compose("train", overrides=["sweep=lr_search"], return_hydra_config=True)
    failure = failures.describe(raised.value)
    assert failure.line == (
        "error: the Optuna sweeper (sweep=lr_search) needs hydra-optuna-sweeper: pip install 'vdr-exp[optuna]'"
    )
    assert failure.exit_code == failures.USER_FAULT


def test_a_plugin_that_is_installed_is_not_blamed():
    error = RuntimeError("In 'hydra/config': Could not find 'hydra/sweeper/optuna'")
    assert extras.missing_plugin(error) is None  # installed here: the composition failed for another reason
    assert extras.missing_plugin(RuntimeError("Could not find 'hydra/sweeper/nosuch'")) is None


def test_an_explicit_request_raises_a_config_error_naming_the_extra(without):
    without("optuna")
    with pytest.raises(extras.ConfigError) as raised:
        extras.require("the Optuna sweeper", "optuna", "optuna")
    assert (
        failures.describe(raised.value).line == "error: the Optuna sweeper needs optuna: pip install 'vdr-exp[optuna]'"
    )


def test_the_ui_check_without_playwright_says_which_extra(without, capsys, monkeypatch):
    without("playwright", "playwright.sync_api")
    spec = importlib.util.spec_from_file_location("ui_check_without_playwright", ROOT / "tests/support/ui_check.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)  # a module of its own: the imported support.ui_check stays as it is
    assert module.main([]) == 2
    assert capsys.readouterr().err.strip() == "error: the UI check needs playwright: pip install 'vdr-exp[ui]'"


@pytest.fixture(scope="module")
def board(tmp_path_factory, migrated_store) -> pd.DataFrame:
    """A two-row leaderboard read from an MLflow store, the way the pipeline logs evaluation runs."""
    from mlflow.tracking import MlflowClient

    from vdr_exp.reports import leaderboard

    root = tmp_path_factory.mktemp("store")
    shutil.copyfile(migrated_store, root / "mlflow.db")  # a new store, without its seconds of migrations
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.create_experiment("vdr", artifact_location=(root / "art").as_uri())
    for name, score, params in (("base", 0.5, 2e9), ("big", 0.6, 8e9)):
        tags = {"run_kind": "evaluate", "model_name": name, "model_id": f"org/{name}", "dataset": "d"}
        run_id = client.create_run(experiment, tags={**tags, "pixel_budget": "p", "embedding_dim": "64"}).info.run_id
        for key, value in {"ndcg_at_10": score, "param_count": params}.items():
            client.log_metric(run_id, key, value)
        client.set_terminated(run_id)
    runs = leaderboard.fetch_runs(client, leaderboard.RunFilter(experiment="vdr"))
    return leaderboard.build(leaderboard.runs_to_rows(runs), "base")


def test_the_tracking_server_without_the_full_mlflow_says_which_extra(tmp_path, without, capsys, monkeypatch):
    from vdr_exp import server

    def started(*command):
        raise AssertionError(f"the server started: {command}")

    monkeypatch.setattr(server.os, "execvpe", started)  # were the check gone, pytest would become the server
    without("flask")
    store = f"sqlite:///{tmp_path / 's.db'}"
    assert server.main(["serve", "--db", store, "--artifacts", str(tmp_path), "--folder", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: the tracking server (mlflow server, its auth app) needs flask: pip install 'vdr-exp[server]'"
    )


def test_the_seed_sweeper_is_found_with_no_hydra_plugin_package_installed(monkeypatch):
    """The lean core has no package under ``hydra_plugins`` (the Optuna sweeper and the launchers bring it);
    a seeds sweep (``make demo``) must still find its sweeper there."""
    from hydra.core.plugins import Plugins
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    from vdr_exp.launch import seed_sweeper

    Plugins.instance()  # Hydra scans its plugins at start-up, before the sweeper is installed
    monkeypatch.setitem(sys.modules, "hydra_plugins", None)  # `import hydra_plugins` fails, as in a lean install
    monkeypatch.delitem(sys.modules, seed_sweeper.PLUGIN_MODULE, raising=False)
    config = OmegaConf.create({"seeds": 2, "hydra": {"sweeper": {"_target_": seed_sweeper.BASIC}}})
    seed_sweeper.install(config)
    assert get_class(config.hydra.sweeper._target_) is seed_sweeper.SeedSweeper
