"""The labelling page's settings (``conf/label.yaml``): the folder, where to listen, the search model."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from vdr_exp.config import FixturesConfig, ModelConfig, PathsConfig, PixelsConfig
from vdr_exp.config.schema import bounded


@dataclass
class LabelRunConfig:
    # The folder of PDFs and page images; its queries file is written in place.
    docs: str = MISSING
    queries_file: str = "queries.jsonl"
    dpi: int = bounded(100, min=10, max=1200)
    page_cache: str = "${paths.page_cache}"
    # Listen on this address only (the page has no login: keep it on 127.0.0.1).
    host: str = "127.0.0.1"
    port: int = bounded(8765, min=1, max=65535)
    # Search pages with ``model`` (loaded on the first search); false: no model is ever loaded.
    search: bool = True
    top_k: int = bounded(8, min=1, max=100)
    # A queries.jsonl written by vdr_exp.generate: its queries are offered for accept / edit / reject.
    review: str | None = None
    model: ModelConfig = MISSING
    pixels: PixelsConfig = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)
    fixtures: FixturesConfig = field(default_factory=FixturesConfig)


def register() -> None:
    ConfigStore.instance().store(name="label_schema", node=LabelRunConfig)
