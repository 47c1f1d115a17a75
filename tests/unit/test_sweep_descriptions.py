"""What a sweep writes for the MLflow UI, in-process: a long leaderboard shortened to fit a run description,
and the saved view's columns for swept groups and values (on the demo sweep: tests/e2e/test_sweep_views.py)."""

from __future__ import annotations

from pathlib import Path

from mlflow.utils.validation import MAX_TAG_VAL_LENGTH

from vdr_exp.runs import sweep_views


def test_a_long_leaderboard_is_shortened_to_fit_a_run_description():
    table = "\n".join(["| model | NDCG@10 |", "|---|---|", *(f"| model_{i} | 0.{i:03d} |" for i in range(1000))])
    urls = {"runs table": "http://127.0.0.1:5000/#/view"}
    text = sweep_views.sweep_description(table, command=["python"], links={}, folder=Path("out"), urls=urls)
    assert len(text) <= MAX_TAG_VAL_LENGTH and "shortened" in text and "| model_0 | 0.000 |" in text
    assert text.endswith("[runs table](http://127.0.0.1:5000/#/view)")


def test_the_view_shows_a_swept_group_by_its_name_and_a_swept_value_as_itself():
    from omegaconf import OmegaConf

    config = OmegaConf.create({"model": {"name": "m", "path": "p"}, "trainer": {"learning_rate": 1e-5}, "loss": {}})
    keys = sweep_views.param_keys(config, ["model", "trainer.learning_rate", "loss", "extra"])
    assert keys == ["model.name", "trainer.learning_rate", "extra"]  # a group without a name has no one param
    assert sweep_views.config_dims(OmegaConf.create({"eval": {"dims": [8, 32, 16]}})) == [32, 16, 8]
    assert sweep_views.config_dims(OmegaConf.create({"eval": {"dims": [64]}, "loss": {}})) == []  # the full width
