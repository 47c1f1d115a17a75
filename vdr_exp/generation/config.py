"""Settings of ``python -m vdr_exp.generate`` (``conf/generate.yaml``, group ``conf/generator/``).

A generation run is a mining run with a generator in front: ``model`` is the embedding model that filters the
generated queries (round trip) and mines their hard negatives, ``dataset`` the folder of your documents.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig

from vdr_exp.config.schema import MineRunConfig, bounded
from vdr_exp.config.validation import _check, _check_mine, _to_object
from vdr_exp.config.variants import RunKind
from vdr_exp.errors import ConfigError

STYLES = ("question", "keyword", "instruction")


@dataclass
class GeneratorConfig:
    """A vision-language model that writes queries for a page image, through transformers' ``generate``."""

    name: str = MISSING
    path: str = MISSING
    # Where the hub id and sizes were read (its model card); how far it was checked (desk_checked / fixture).
    source: str = ""
    check: str = "desk_checked"
    dtype: str = "bfloat16"
    attn_implementation: str = "sdpa"
    # Pixel budget of the page image given to the generator (the processor's min/max pixels).
    min_pixels: int = bounded(3136, min=1)
    max_pixels: int = bounded(1003520, min=1)
    max_new_tokens: int = bounded(96, min=1)
    batch_size: int = bounded(8, min=1)
    # Greedy decoding by default (reproducible); sampling when temperature > 0.
    temperature: float = bounded(0.0, min=0)
    seed: int = 42
    fixture: bool = False


@dataclass
class FilterConfig:
    """What a generated (query, page) pair must pass to be kept; each failure is recorded as the drop reason."""

    # Round trip: the page must rank in the top k of the whole corpus for its own query (embedding ``model``).
    top_k: int = bounded(3, min=1)
    # Near duplicates: cosine of two queries' embeddings at or above this (or the same normalised text).
    duplicate_cosine: float = bounded(0.95, gt=0, max=1)
    # Copy: the query repeats this many consecutive words of the page's text layer (PDF pages that have one).
    copy_max_words: int = bounded(6, min=2)
    min_words: int = bounded(2, min=1)
    max_words: int = bounded(40, min=1)
    max_chars: int = bounded(300, min=1)


@dataclass
class GenerateConfig:
    styles: list[str] = field(default_factory=lambda: list(STYLES))
    # Queries asked for per page and style.
    per_style: int = bounded(1, min=1, max=10)
    # Only the first N pages of the folder (null: all).
    max_pages: int | None = bounded(None, min=1)
    # The run's folder (raw generations, resumable; the dataset; queries.jsonl). null: one per source folder
    # under ${paths.output_dir}/generated.
    out: str | None = None
    # The mined training set of kept pairs (dataset=mined dataset.path=<this>), what sweep=generated_vs_human trains on.
    train_out: str = "${paths.mined}/generated-queries"
    filter: FilterConfig = field(default_factory=FilterConfig)


@dataclass
class GenerateRunConfig(MineRunConfig):
    generator: GeneratorConfig = field(default=MISSING, metadata={"section": True})
    generate: GenerateConfig = field(default_factory=GenerateConfig, metadata={"section": True})
    run_kind: RunKind = RunKind.generate


def register() -> None:
    ConfigStore.instance().store(name="generate_schema", node=GenerateRunConfig)


def load_generate_config(composed: DictConfig) -> GenerateRunConfig:
    cfg = _to_object(composed, GenerateRunConfig, "generate")
    _check(cfg)
    _check_mine(cfg)
    unknown = [s for s in cfg.generate.styles if s not in STYLES]
    if unknown or not cfg.generate.styles:
        raise ConfigError(f"generate.styles={cfg.generate.styles}: use some of {list(STYLES)}.")
    if cfg.generator.min_pixels > cfg.generator.max_pixels:
        raise ConfigError("generator.min_pixels must be at most generator.max_pixels.")
    return cfg
