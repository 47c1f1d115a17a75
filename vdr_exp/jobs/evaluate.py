"""The evaluation job: any model on a dataset's protocol, every metric and artifact logged (optionally reranked)."""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from vdr_exp import data
from vdr_exp.config import EvaluateRunConfig
from vdr_exp.jobs import steps
from vdr_exp.runs.job_context import JobContext

log = logging.getLogger(__name__)


def run_evaluation(cfg: EvaluateRunConfig, composed: DictConfig, job: JobContext) -> dict[str, float]:
    if cfg.benchmark.active:  # a suite of MTEB tasks instead of one dataset
        from vdr_exp.suites import runner

        return runner.run_suite(cfg, composed, job)
    with steps.start_run(cfg, composed, job):
        steps.log_config(composed, job.out_dir)
        steps.prepare_fixtures(cfg)
        loaded = steps.load_model(cfg)
        protocol = data.load_eval_protocol(cfg.dataset)
        steps.log_dataset(cfg, protocol=protocol)
        result = steps.evaluate(cfg, loaded, protocol, dims=cfg.eval.dims, cache=steps.embedding_cache_for(cfg))
        steps.log_evaluation(result, cfg, protocol.name, job.out_dir)
        steps.log_gallery(result, cfg, protocol, job.out_dir)
        log.info("NDCG@10 %.4f on %s", result.metrics["ndcg_at_10"], protocol.name)
        if cfg.reranker.path is not None:
            steps.rerank(cfg, protocol, result, job.out_dir)
        return result.metrics
