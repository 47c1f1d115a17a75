"""The evaluation job: any model on a dataset's protocol, every metric and artifact logged (optionally reranked).

A suite of benchmark tasks (``benchmark=...``) is :mod:`vdr_exp.suites.runner`, one layer up; the command picks.
"""

from __future__ import annotations

import logging

from vdr_exp import data
from vdr_exp.config import EvaluateRunConfig
from vdr_exp.jobs import inputs, steps
from vdr_exp.runs.job_spec import JobSpec

log = logging.getLogger(__name__)


def run_evaluation(spec: JobSpec[EvaluateRunConfig]) -> dict[str, float]:
    cfg, job = spec.cfg, spec.context
    with steps.start_run(spec):
        steps.log_config(spec)
        steps.prepare_fixtures(cfg)
        loaded = steps.load_model(spec)
        protocol = data.load_eval_protocol(cfg.dataset)
        inputs.log_dataset(cfg, protocol=protocol)
        result = steps.evaluate(cfg, loaded, protocol, dims=cfg.eval.dims, cache=steps.embedding_cache_for(cfg))
        steps.log_evaluation(result, cfg, protocol.name, job.out_dir)
        steps.log_gallery(result, cfg, protocol, job.out_dir)
        log.info("NDCG@10 %.4f on %s", result.metrics["ndcg_at_10"], protocol.name)
        if cfg.reranker.path is not None:
            steps.rerank(cfg, protocol, result, job.out_dir)
        return result.metrics
