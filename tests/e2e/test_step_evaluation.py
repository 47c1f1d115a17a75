"""The trainer's step evaluations go through the input pipeline like every other evaluation: pages stay lazy
when the trainer is built, and a step evaluation scores the model exactly as the final evaluation does, for
every model family and with LoRA adapters. A page worker that hangs ends a run with one line naming ``eval.pipeline.timeout_s``
(the timeouts themselves, in-process: tests/unit/test_loader_timeouts.py)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from hydra import compose, initialize_config_module

from vdr_exp import data
from vdr_exp.config import CONFIG_MODULE, load_train_config, register_configs
from vdr_exp.data.pages import StoredPage
from vdr_exp.jobs import steps, train
from vdr_exp.modeling import losses, models
from vdr_exp.retrieval import scoring

register_configs()


def _training(experiment: str, fixtures_root) -> tuple:
    overrides = [f"experiment={experiment}", f"fixtures.root={fixtures_root}", "eval.pipeline.workers=1",
                 "trainer.dataloader_num_workers=1", "dataset.max_eval_rows=12"]  # fmt: skip
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        cfg = load_train_config(compose("train", overrides=overrides))
    loaded = models.load_model(cfg.model, cfg.pixels)
    rows, protocol = data.load_train_and_eval(cfg.dataset)
    return cfg, train.Training(loaded, rows, protocol, losses.build_loss(loaded.model, cfg.loss, loaded.family))


@pytest.mark.parametrize("experiment", ["offline_demo", "offline_lora", "offline_multi_vector", "offline_router"])
def test_a_step_evaluation_streams_lazy_pages_and_scores_as_the_final_evaluation(
    experiment, fixture_paths, tmp_path, monkeypatch
):
    cfg, parts = _training(experiment, fixture_paths.root)
    decoded = []
    image = StoredPage.image
    monkeypatch.setattr(StoredPage, "image", lambda page: decoded.append(page) or image(page))
    trainer = train.build_trainer(cfg, parts, tmp_path, callbacks=[])
    assert decoded == []  # no page decoded when the trainer is built: each evaluation streams them
    assert trainer.get_train_dataloader().timeout == cfg.trainer.dataloader_timeout_s  # with a worker: timed

    step = trainer.evaluate()
    model, protocol = parts.loaded.model, parts.protocol
    final = scoring.evaluate(  # the final evaluation's call (steps.evaluate without the MLflow logging)
        model, protocol, batch_size=cfg.eval.batch_size, late_interaction=parts.loaded.family.late_interaction,
        pipeline=steps.pipeline_settings(cfg, len(protocol.corpus), model.device),
    )  # fmt: skip
    score = trainer.evaluator.similarity_name(model)
    assert score == ("maxsim" if experiment == "offline_multi_vector" else "cosine")
    prefix = f"eval_{protocol.name}_{score}_"
    assert trainer.evaluator.primary_metric == f"{protocol.name}_{score}_ndcg@10"
    for metric in ("ndcg_at_10", "mrr_at_10", "map_at_100", "recall_at_10", "accuracy_at_1"):
        assert step[prefix + metric.replace("_at_", "@")] == pytest.approx(final.metrics[metric], abs=1e-9)


HANGING_PAGES = """
import runpy, sys, time
from torch.utils.data import get_worker_info
from vdr_exp.data import pages

decode = pages.StoredPage.image
def hang_in_workers(page):
    if get_worker_info() is not None:
        time.sleep(900)  # a worker stuck on a full /dev/shm: alive, sending nothing
    return decode(page)
pages.StoredPage.image = hang_in_workers
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


@pytest.mark.slow  # about 30 s (a whole evaluate run): CI runs it; make test keeps its budget
def test_a_hung_page_worker_ends_the_run_with_one_line_naming_the_timeout_and_a_failed_run(tmp_path, fixture_paths):
    from entrypoints import _env, entry_command, runs_in

    overrides = ["experiment=offline_eval", "eval.cache=false", "eval.pipeline.workers=1", "eval.pipeline.timeout_s=2"]
    command = entry_command("vdr_exp.evaluate", overrides, tmp_path, fixture_paths.root)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", HANGING_PAGES, *command[2:]], cwd=tmp_path, env=_env(), capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert time.monotonic() - started < 240  # the worker was killed: the process did not wait for it at exit
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "eval.pipeline.timeout_s=2" in errors[0] and "/dev/shm" in errors[0], errors
    assert "Traceback" not in result.stderr and "killed by signal" not in result.stderr
    (run,) = runs_in(tmp_path)
    assert run.info.status == "FAILED" and "eval.pipeline.timeout_s" in run.data.tags["error"]
