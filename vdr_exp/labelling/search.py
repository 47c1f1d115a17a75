"""Find the other pages that answer a query: the folder's pages ranked by an embedding model.

The model is the one the run's ``model=`` names, loaded by the same code as evaluations (pixel budget, dtype,
attention). It loads, and every page is encoded, on the first search only; later searches encode the query.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import torch

from vdr_exp.config import FixturesConfig, ModelConfig, PixelsConfig
from vdr_exp.fixtures import ensure_fixtures
from vdr_exp.labelling.pages import PageIndex
from vdr_exp.modeling import models

log = logging.getLogger(__name__)
CHUNK = 64


class PageSearch:
    def __init__(self, model: ModelConfig, pixels: PixelsConfig, fixtures: FixturesConfig, index: PageIndex) -> None:
        self.model_cfg, self.pixels, self.fixtures, self.index = model, pixels, fixtures, index
        self._lock = threading.Lock()
        self._model = None
        self._pages: torch.Tensor | None = None
        self._ids: list[str] = []

    @property
    def name(self) -> str:
        return self.model_cfg.name

    def _ready(self) -> None:
        if self._pages is not None:
            return

        if self.model_cfg.fixture:
            ensure_fixtures(Path(self.fixtures.root))
        log.info("loading %s to search pages", self.model_cfg.path)
        self._model = models.load_model(self.model_cfg, self.pixels).model
        self._ids = list(self.index.refs)
        parts = []
        for start in range(0, len(self._ids), CHUNK):  # pages decoded a chunk at a time: memory stays bounded
            images = [self.index.image(page_id) for page_id in self._ids[start : start + CHUNK]]
            parts.append(self._model.encode_document(images, batch_size=8, convert_to_tensor=True))
        self._pages = torch.nn.functional.normalize(torch.cat(parts).float(), dim=-1)

    def search(self, text: str, top_k: int) -> list[tuple[str, float]]:
        """The ``top_k`` best pages for ``text``: (page id, cosine score), best first."""
        with self._lock:
            self._ready()
            query = self._model.encode_query([text], convert_to_tensor=True, show_progress_bar=False)
            scores = (torch.nn.functional.normalize(query.float(), dim=-1) @ self._pages.T)[0]
            best = torch.argsort(scores, descending=True)[:top_k].tolist()
            return [(self._ids[i], float(scores[i])) for i in best]
