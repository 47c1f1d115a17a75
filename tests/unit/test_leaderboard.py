"""Leaderboard and run-reference logic against a real MLflow SQLite store filled with hand-made runs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from support.stores import Store

from vdr_exp import leaderboard as leaderboard_cli
from vdr_exp.config import RunRefConfig
from vdr_exp.errors import ConfigError
from vdr_exp.reports import leaderboard
from vdr_exp.runs import run_refs


def board_of(store: Store, base: str | None = None, **filters) -> pd.DataFrame:
    runs = leaderboard.fetch_runs(store.client, leaderboard.RunFilter(**filters))
    return leaderboard.build(leaderboard.runs_to_rows(runs), base)


def test_ranks_by_ndcg_with_deltas_against_the_base(store):
    store.run("base", 0.80, params=2e9, published=2.1e9)
    store.run("big", 0.85, params=8e9)
    store.run("small", 0.60, params=4e8)
    board = board_of(store, base="base")
    assert list(board["model"]) == ["big", "base", "small"]
    assert list(board["rank"]) == [1, 2, 3]
    assert board["delta_ndcg_at_10"].round(4).tolist() == [0.05, 0.0, -0.2]
    assert board.loc[board["model"] == "base", "published_params"].item() == 2.1e9
    assert list(board.columns) == leaderboard.COLUMNS


def test_latest_finished_run_wins_and_failed_runs_never_count(store):
    store.run("m", 0.50)
    latest = store.run("m", 0.40)
    store.run("m", 0.99, status="FAILED")
    store.run("m", 0.98, status="KILLED")
    board = board_of(store)
    assert len(board) == 1
    assert board["run_id"].item() == latest and board["ndcg_at_10"].item() == 0.40


def test_each_setting_is_ranked_on_its_own(store):
    store.run("a", 0.7, pixels="side_256")
    store.run("b", 0.6, pixels="side_256")
    store.run("a", 0.8, pixels="blog_600")
    store.run("b", 0.9, pixels="blog_600")
    board = board_of(store, base="a")
    ranks = {(r.model, r.pixel_budget): (r.rank, round(r.delta_ndcg_at_10, 4)) for r in board.itertuples()}
    assert ranks == {
        ("b", "blog_600"): (1, 0.1),
        ("a", "blog_600"): (2, 0.0),
        ("a", "side_256"): (1, 0.0),
        ("b", "side_256"): (2, -0.1),
    }


def test_matryoshka_dims_become_rows_and_a_curve(store, tmp_path):
    store.run("a", 0.8, dim=64, dims={64: 0.8, 32: 0.7, 16: 0.5})
    store.run("b", 0.6, dim=128, dims={128: 0.6, 64: 0.55, 32: 0.5, 16: 0.45})
    board = board_of(store, base="a")
    assert set(board["width"]) == {"full", "128", "64", "32", "16"}
    at_16 = board[board["width"] == "16"].set_index("model")
    assert at_16.loc["a", "rank"] == 1 and round(at_16.loc["b", "delta_ndcg_at_10"], 4) == -0.05
    full = board[board["width"] == "full"].set_index("model")
    assert full.loc["b", "dim"] == 128 and full.loc["a", "dim"] == 64  # each at its own width
    written = leaderboard.write(board, tmp_path / "boards", "m")
    assert written.matryoshka_plot is not None and written.matryoshka_plot.read_bytes()[:4] == b"\x89PNG"
    assert pd.read_csv(written.csv).shape == board.shape
    assert "| a " in written.markdown.read_text()


def test_markdown_pivots_model_by_width_with_deltas_to_the_base_at_three_decimals(store):
    store.run("a", 0.8, dim=64, dims={64: 0.8, 32: 0.7, 16: 0.5})
    store.run("b", 0.6, dim=64, dims={64: 0.6, 32: 0.75, 16: 0.45})
    board = board_of(store, base="a")
    table = leaderboard.pivot(board, base="a").set_index("model")
    assert list(table.columns) == ["full", "64", "32", "16", "Δ full", "Δ 64", "Δ 32", "Δ 16"]
    assert table.loc["b", "32"] == pytest.approx(0.75) and table.loc["b", "Δ 32"] == pytest.approx(0.05)
    assert table.loc["b", "Δ 16"] == pytest.approx(-0.05) and table.loc["a", "Δ full"] == 0
    markdown = leaderboard.to_markdown(board, base="a")
    (row_b,) = [line for line in markdown.splitlines() if line.startswith("| b ") and "+0.050" in line]
    assert [cell.strip() for cell in row_b.split("|")[2:-1]] == [
        "0.600", "0.600", "0.750", "0.450", "-0.200", "-0.200", "+0.050", "-0.050",
    ]  # fmt: skip
    full_rows = [line for line in markdown.splitlines() if line.startswith("|") and "single-vector" in line]
    assert len(full_rows) == 2 and "0.8000" not in markdown and ".0 |" not in markdown  # no float noise


def test_outputs_without_dims_have_no_matryoshka_plot(store, tmp_path):
    store.run("a", 0.8)
    written = leaderboard.write(board_of(store), tmp_path, "plain")
    assert written.size_plot.read_bytes()[:4] == b"\x89PNG" and written.matryoshka_plot is None


def test_filters_by_parent_sweep_tag_and_kind(store):
    parent = store.client.create_run(store.experiment_id, tags={"run_kind": "sweep", "sweep": "s"}).info.run_id
    store.run("in_sweep", 0.5, parent=parent, tags={"sweep": "s"})
    store.run("tagged", 0.5, tags={"team": "x"})
    store.run("trained", 0.5, kind="train", tags={"sweep_params": "loss=mnrl"})
    assert list(board_of(store, parent_run_id=parent)["model"]) == ["in_sweep"]
    assert list(board_of(store, sweep="s")["model"]) == ["in_sweep"]
    assert list(board_of(store, tags=(("team", "x"),))["model"]) == ["tagged"]
    assert list(board_of(store, run_kind="train")["model"]) == ["trained finetuned [loss=mnrl]"]
    assert len(board_of(store, run_kind="all")) == 3  # never the sweep parent itself


def test_cli_writes_logs_to_the_parent_and_fails_clearly(store, tmp_path, capsys):
    parent = store.client.create_run(store.experiment_id, tags={"run_kind": "sweep", "sweep": "s"}).info.run_id
    store.run("a", 0.7, parent=parent)
    store.run("b", 0.8, parent=parent)
    out = tmp_path / "boards"
    args = ["--tracking-uri", store.uri, "--out-dir", str(out), "--base", "a"]
    assert leaderboard_cli.main([*args, "--parent", "latest"]) == 0
    name = "s"  # the parent's sweep preset
    assert pd.read_csv(out / f"{name}.csv")["model"].tolist() == ["b", "a"]
    logged = {a.path for a in store.client.list_artifacts(parent, "leaderboard")}
    assert f"leaderboard/{name}.csv" in logged and f"leaderboard/{name}_size_vs_ndcg.png" in logged
    assert "| b " in capsys.readouterr().out

    assert leaderboard_cli.main([*args, "--tag", "team=nobody"]) == 2
    assert "no FINISHED runs match" in capsys.readouterr().err
    assert leaderboard_cli.main([*args, "--experiment", "missing"]) == 2
    assert "experiment 'missing'" in capsys.readouterr().err


def test_run_reference_by_id_and_latest_with_tags(store):
    old = store.run("tiny", 0.1, kind="train", tags={"model_dir": "/m/old", "experiment_preset": "demo"})
    new = store.run("tiny", 0.2, kind="train", tags={"model_dir": "/m/new", "experiment_preset": "demo"})
    store.run("tiny", 0.3, kind="train", tags={"model_dir": "/m/other", "experiment_preset": "recipe"})
    store.run("tiny", 0.4, kind="train", status="FAILED", tags={"model_dir": "/m/failed", "experiment_preset": "demo"})
    latest = run_refs.resolve(RunRefConfig(tags={"experiment_preset": "demo"}), store.client, "vdr")
    assert (latest.run_id, latest.model_dir, latest.logged_model_id) == (new, "/m/new", None)
    assert run_refs.resolve(RunRefConfig(run_id=old), store.client, "vdr").model_dir == "/m/old"


def test_run_reference_errors_say_what_to_fix(store):
    failed = store.run("tiny", 0.4, kind="train", status="FAILED", tags={"model_dir": "/m/failed"})
    with pytest.raises(ConfigError, match="is FAILED"):
        run_refs.resolve(RunRefConfig(run_id=failed), store.client, "vdr")
    with pytest.raises(ConfigError, match="not a run in this MLflow store"):
        run_refs.resolve(RunRefConfig(run_id="0" * 32), store.client, "vdr")
    with pytest.raises(ConfigError, match="no match for the latest FINISHED training run.*preset=nope"):
        run_refs.resolve(RunRefConfig(tags={"preset": "nope"}), store.client, "vdr")
    with pytest.raises(ConfigError, match="experiment 'elsewhere' does not exist"):
        run_refs.resolve(RunRefConfig(experiment="elsewhere"), store.client, "vdr")


def test_tag_filters_hold_any_quote_a_value_may_contain(store):
    store.run("kept", 0.7, tags={"team": "o'brien", "note": 'say "hi"'})
    store.run("other", 0.9, tags={"team": "obrien"})
    assert board_of(store, tags=(("team", "o'brien"),))["model"].tolist() == ["kept"]
    assert board_of(store, tags=(("note", 'say "hi"'),))["model"].tolist() == ["kept"]
    with pytest.raises(ConfigError, match="both quote characters"):
        board_of(store, tags=(("team", "o'b\"x"),))


def _log_per_query(store: Store, run_id: str, values: list[float], tmp_path: Path) -> None:
    table = pd.DataFrame({"query_id": [f"q{i}" for i in range(len(values))], "query": "x", "ndcg_at_10": values})
    path = tmp_path / run_id / "per_query.csv"
    path.parent.mkdir(parents=True)
    table.to_csv(path, index=False)
    store.client.log_artifact(run_id, str(path))


def test_differences_come_with_a_paired_ci_and_p_value_that_match_scipy(store, tmp_path, capsys):
    import numpy as np
    from scipy import stats

    rng = np.random.default_rng(7)
    base_scores = rng.uniform(0, 1, 80)
    tuned_scores = np.clip(base_scores + rng.normal(0.05, 0.2, 80), 0, 1)
    base = store.run("base", float(base_scores.mean()))
    tuned = store.run("tuned", float(tuned_scores.mean()))
    _log_per_query(store, base, list(base_scores), tmp_path)
    _log_per_query(store, tuned, list(tuned_scores), tmp_path)
    board = leaderboard.add_significance(board_of(store, base="base"), store.client, "base")
    row = board[board["model"] == "tuned"].iloc[0]
    assert row["n_queries"] == 80 and np.isnan(board[board["model"] == "base"].iloc[0]["p_value"])

    delta = tuned_scores - base_scores  # an independent computation of the same two quantities
    ci = stats.bootstrap((delta,), np.mean, n_resamples=10_000, method="percentile", random_state=1).confidence_interval
    assert row["delta_ci95_low"] == pytest.approx(ci.low, abs=0.01)
    assert row["delta_ci95_high"] == pytest.approx(ci.high, abs=0.01)
    permuted = stats.permutation_test(
        (base_scores, tuned_scores),
        lambda a, b: np.mean(b - a),
        permutation_type="samples",
        n_resamples=10_000,
        random_state=1,
    )
    assert row["p_value"] == pytest.approx(permuted.pvalue, abs=0.02)
    assert "[+" in leaderboard.to_markdown(board) or "[-" in leaderboard.to_markdown(board)

    out = tmp_path / "boards"
    assert leaderboard_cli.main(["--tracking-uri", store.uri, "--out-dir", str(out), "--compare", base, tuned]) == 0
    printed = capsys.readouterr().out
    compared = pd.read_csv(out / f"compare_{base[:8]}_vs_{tuned[:8]}.csv")
    assert len(compared) == 80 and list(compared["delta"]) == sorted(compared["delta"])
    improved = int((compared["change"] == "improved").sum())
    assert f"improved {improved}," in printed and f"p={row['p_value']:.4f}" in printed


def test_a_sweep_whose_jobs_were_all_skipped_still_lists_its_runs(store):
    earlier = store.run("made_elsewhere", 0.6)  # no sweep tag: run by hand or by another sweep
    parent = store.client.create_run(store.experiment_id, tags={"run_kind": "sweep", "sweep": "s"}).info.run_id
    store.client.set_tag(parent, "skipped.0", earlier)
    assert board_of(store, sweep="s")["model"].tolist() == ["made_elsewhere"]


def test_size_plot_colours_families_keeps_labels_apart_and_points_from_base_to_finetuned(store, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from vdr_exp.reports import plots

    for name, score in (("qwen3_vl_2b", 0.888), ("qwen3_vl_2b_finetuned", 0.947), ("qwen3_vl_8b", 0.923)):
        store.run(name, score, params=2_000_000_000 if "2b" in name else 8_000_000_000)
    for name, score in (("nomic_embed_3b", 0.899), ("nomic_embed_3b_v2", 0.898), ("bge_vl_large", 0.45)):
        store.run(name, score, params=3_000_000_000 if "nomic" in name else 400_000_000)
    board = board_of(store, base="qwen3_vl_2b")
    assert plots.family("qwen3_vl_2b_finetuned") == plots.family("qwen3_vl_8b") != plots.family("nomic_embed_3b")

    figures = []
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figure to inspect what was drawn
    plots.size_vs_ndcg(board, tmp_path / "size.png", title="t", base="qwen3_vl_2b")
    (fig,) = figures
    ax = fig.axes[0]
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in ax.texts if t.get_text()]
    assert len(boxes) == 6
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    arrows = [t for t in ax.texts if not t.get_text() and t.arrow_patch is not None]
    assert len(arrows) == 1  # base -> its finetuned version only
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sorted(legend) == ["bge vl", "nomic embed", "qwen3 vl"]
    colours = {tuple(c.get_facecolor()[0]) for c in ax.collections if c.get_offsets().size}
    assert len(colours) == 3


def test_a_model_read_back_from_its_training_run_loads_as_that_run_trained_it(store):
    from vdr_exp.config import ModelConfig, ModelKind

    run_id = store.run("tiny_mv", 0.3, kind="train", tags={"model_dir": "/m/mv"})
    trained_with = {
        "model.name": "tiny_mv", "model.kind": "multi_vector", "model.dtype": "bfloat16",
        "model.attn_implementation": "eager", "model.use_pixel_budget": "False",
    }  # fmt: skip
    for key, value in trained_with.items():
        store.client.log_param(run_id, key, value)
    resolved = run_refs.resolve(RunRefConfig(run_id=run_id), store.client, "vdr")
    model = ModelConfig(name="from_run", path="", dtype=None, attn_implementation=None)
    run_refs.apply(model, resolved)
    assert model.name == f"tiny_mv-ft-{run_id[:8]}" and model.kind == ModelKind.multi_vector
    assert (model.dtype, model.attn_implementation, model.use_pixel_budget) == ("bfloat16", "eager", False)
    named = ModelConfig(name="mine", path="", dtype="float32", attn_implementation="sdpa")
    run_refs.apply(named, resolved)  # a config's own name and explicit dtype/attention stay
    assert (named.name, named.dtype, named.attn_implementation) == ("mine", "float32", "sdpa")


def test_the_width_pivot_keeps_a_model_whose_scores_are_all_missing(store):
    import math

    store.run("a", 0.8, dim=64, dims={64: 0.8, 32: 0.7})
    store.run("b", math.nan, dim=64, dims={64: math.nan, 32: math.nan})
    table = leaderboard.pivot(board_of(store, base="a"), base="a").set_index("model")
    assert list(table.index) == ["a", "b"] and table.loc["b"].isna().all()
