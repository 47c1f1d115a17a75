"""MLflow's runs table cuts run names at about 24 characters: the part that tells a sweep's jobs apart comes first."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from vdr_exp.jobs.steps import run_name
from vdr_exp.runtime.job_context import JobContext


def _name(kind: str, model: str, sweep_params: str = "", overrides: tuple[str, ...] = ()) -> str:
    cfg = SimpleNamespace(run_kind=kind, model=SimpleNamespace(name=model))
    return run_name(cfg, JobContext(Path("."), list(overrides), sweep_params=sweep_params))


def test_the_offline_demos_jobs_differ_within_the_visible_characters():
    """The demo's eight jobs: three trainings (one per seed), the finetuned model once per seed, base and 4x."""
    names = [_name("train", "tiny_qwen3_vl", overrides=(f"trainer.seed={s}",)) for s in (42, 43, 44)]
    names += [
        _name(
            "evaluate", "tiny_qwen3_vl_finetuned", "model=tiny_qwen3_vl_finetuned", (f"model.from_run.tags.seed={s}",)
        )
        for s in (42, 43, 44)
    ]
    names += [_name("evaluate", m, f"model={m}") for m in ("tiny_qwen3_vl", "tiny_qwen3_vl_4x")]
    assert "eval seed=43 tiny_qwen3_vl_finetuned" in names and "train seed=44 tiny_qwen3_vl" in names
    assert len({name[:20] for name in names}) == len(names), names


def test_a_swept_seed_leads_whatever_order_the_overrides_come_in():
    name = _name("train", "tiny_qwen3_vl", "loss=mnrl trainer.seed=7", ("loss=mnrl", "trainer.seed=7"))
    assert name == "train seed=7 loss=mnrl tiny_qwen3_vl"


def test_a_single_run_is_its_kind_and_model():
    assert _name("evaluate", "qwen3_vl_embedding_2b") == "eval qwen3_vl_embedding_2b"
