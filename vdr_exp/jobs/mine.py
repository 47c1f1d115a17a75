"""The mining job: hard negatives for your own documents' queries, written as a dataset in the recipe's layout."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path

import mlflow
import torch

from vdr_exp import data
from vdr_exp.config import MineRunConfig
from vdr_exp.data import dataset_folder, negatives
from vdr_exp.errors import ConfigError, InputError
from vdr_exp.jobs import steps
from vdr_exp.modeling import page_encoding
from vdr_exp.runs.job_spec import JobSpec
from vdr_exp.tags import MINED_DATASET

log = logging.getLogger(__name__)


SUMMARY = "mining.json"


def mine_target(cfg: MineRunConfig) -> Path:
    """Where the mined dataset goes: ``mine.out``, or by default a folder of its own per source under
    ``paths.mined``. Never the source folder, one of its parents, or a folder the project did not write."""
    source = Path(cfg.dataset.path).expanduser()
    if cfg.mine.out:
        out = Path(cfg.mine.out).expanduser().resolve()
    else:
        tag = hashlib.sha256(str(source.resolve() if source.exists() else cfg.dataset.path).encode()).hexdigest()[:8]
        out = (Path(cfg.paths.mined) / f"{source.name or cfg.dataset.name}-{tag}").expanduser().resolve()
    if source.exists() and (out == source.resolve() or out in source.resolve().parents):
        raise InputError(
            f"mine.out={out} is the source folder dataset.path or one of its parents; writing there would replace "
            "your documents. Choose another folder (or leave mine.out unset for one under paths.mined)."
        )
    dataset_folder.check_replaceable(out, "mine.out", (SUMMARY,))
    log.info("the mined dataset goes to %s", out)
    return out


def run_mining(spec: JobSpec[MineRunConfig]) -> dict[str, float]:
    """Mine negatives for the train and eval queries of the split; write them as one dataset folder."""
    cfg = spec.cfg
    m = cfg.mine
    settings = negatives.MiningSettings(
        num_negatives=m.num_negatives, range_min=m.range_min, max_score_ratio=m.max_score_ratio, batch_size=m.batch_size
    )
    out = mine_target(cfg)  # checked before anything loads: a wrong folder costs nothing
    with steps.start_run(spec):
        steps.log_config(spec)
        steps.prepare_fixtures(cfg)
        loaded = steps.load_model(spec)
        model = loaded.model
        train, held_out = data.split_protocols(cfg.dataset)
        pages, page_ids = list(train.corpus.values()), list(train.corpus)  # both sides share the full corpus
        embedded, timing = page_encoding.encode_pages(
            model,
            pages,
            page_ids,
            batch_size=cfg.mine.batch_size,
            settings=steps.pipeline_settings(cfg, len(pages), model.device),
        )
        page_encoding.warn_if_waiting(timing, model.device)
        corpus = torch.nn.functional.normalize(embedded.float(), dim=-1)
        splits = {"train": negatives.mine_split(model, train, corpus, settings)}
        if held_out.queries:
            splits["eval"] = negatives.mine_split(model, held_out, corpus, settings)
        if len(splits["train"].rows) == 0:
            raise ConfigError(
                "mining produced no training rows; lower mine.num_negatives or mine.range_min, raise "
                "mine.max_score_ratio, or lower dataset.eval_fraction so training keeps some queries."
            )
        summary = {
            "model": loaded.config.path,
            "source": cfg.dataset.path,
            "settings": dataclasses.asdict(settings),
            "splits": {
                name: {"rows": len(s.rows), "pairs": s.pairs, "dropped": s.dropped} for name, s in splits.items()
            },
        }
        body = f"# {out.name}\n\nHard negatives mined by `python -m vdr_exp.mine`.\n\n```json\n"
        body += json.dumps(summary, indent=2) + "\n```\n"
        mining_json = {SUMMARY: json.dumps(summary, indent=2)}
        dataset_folder.write_dataset_folder(out, {n: s.rows for n, s in splits.items()}, body, extra_files=mining_json)
        metrics = {f"{name}_rows": float(len(s.rows)) for name, s in splits.items()}
        metrics.update({f"{name}_dropped": float(s.dropped) for name, s in splits.items()})
        mlflow.log_metrics(metrics)
        mlflow.set_tag(MINED_DATASET, str(out))
        mlflow.log_text(json.dumps(summary, indent=2), SUMMARY)
        log.info("mined %s -> %s", {n: len(s.rows) for n, s in splits.items()}, out)
        print(f"wrote {out} (configs: {', '.join(splits)}); train on it with: dataset=mined dataset.path={out}")
        return metrics
