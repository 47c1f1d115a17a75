"""The input pipeline's settings: how many page workers "auto" starts, the log line when a model waits for
pages, and bad settings refused naming the key (pages through the workers: tests/e2e/test_page_pipeline.py)."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_module

from vdr_exp.config import CONFIG_MODULE, load_evaluate_config, register_configs
from vdr_exp.modeling import page_encoding


def test_auto_workers_leave_a_core_to_the_main_process_and_skip_single_batches_and_cpu_models(monkeypatch):
    monkeypatch.setattr(page_encoding, "usable_cores", lambda: 16)
    assert page_encoding.resolve_workers("auto", batches=100) == page_encoding.MAX_AUTO_WORKERS
    assert page_encoding.resolve_workers("auto", batches=3) == 3
    assert page_encoding.resolve_workers("auto", batches=1) == 0
    monkeypatch.setattr(page_encoding, "usable_cores", lambda: 2)
    assert page_encoding.resolve_workers("auto", batches=100) == 1
    assert page_encoding.resolve_workers("auto", batches=100, accelerator=False) == 0  # torch uses every core
    assert page_encoding.resolve_workers("0", batches=100) == 0
    assert page_encoding.resolve_workers(3, batches=100) == 3


def test_a_model_waiting_for_pages_says_so_in_the_log(caplog):
    timing = page_encoding.EncodeTiming(wait_s=3.0, forward_s=7.0, pages=100, workers=1)
    gpu = torch.device("cuda")  # only its type is read
    with caplog.at_level("WARNING"):
        page_encoding.warn_if_waiting(timing, gpu)
    assert "waited 30%" in caplog.text and "eval.pipeline.workers" in caplog.text
    caplog.clear()
    page_encoding.warn_if_waiting(page_encoding.EncodeTiming(wait_s=0.5, forward_s=9.5, pages=100), gpu)
    page_encoding.warn_if_waiting(timing, torch.device("cpu"))  # the CPU prepares and forwards: nothing to tune
    assert caplog.text == ""


@pytest.mark.parametrize(
    ("override", "named"),
    [("eval.pipeline.workers=many", "eval.pipeline.workers"), ("eval.pipeline.preprocess_on=gpu", "preprocess_on")],
)
def test_a_bad_pipeline_setting_is_refused_naming_the_key(override, named):
    from vdr_exp.errors import ConfigError

    register_configs()  # the schemas Hydra composes against; other modules' tests may not have run first
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        composed = compose("evaluate", overrides=[override])
    with pytest.raises(ConfigError, match=named):
        load_evaluate_config(composed)
