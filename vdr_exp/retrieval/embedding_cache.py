"""Evaluation embeddings kept on disk, so a frozen model never encodes the same pages twice.

An entry is keyed by everything that changes the vectors: the model's weights (hashed tensor by tensor), its
module stack and prompts, the processor's pixel budget, and the content of what is encoded (texts, image
pixels) with its role (query or document). Change any of them and the key changes; nothing is ever
invalidated by hand. Entries are ``.npy`` files; the folder is capped in size (least recently used go first).
Multi-vector embeddings (ragged per-token matrices) are not cached.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xxhash

log = logging.getLogger(__name__)


def _digest() -> Any:
    """xxh3-128: a cache key needs no cryptographic strength, and hashing pages and weights must cost far
    less than encoding them (tens of GB/s, against about 1 GB/s for blake2b)."""
    return xxhash.xxh3_128()


def model_fingerprint(model: torch.nn.Module, settings: str = "") -> str:
    """Weights, architecture and encode-time settings (prompts, pixel budget, dtype) of a loaded model."""
    digest = _digest()
    digest.update(repr(model).encode())
    digest.update(repr(getattr(model, "prompts", None)).encode())
    digest.update(settings.encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode() + str(tensor.dtype).encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def inputs_fingerprint(items: Sequence[Any]) -> str:
    """Content of what is encoded: texts, or image mode, size and pixels."""
    digest = _digest()
    for item in items:
        if isinstance(item, str):
            digest.update(b"t" + item.encode())
        elif hasattr(item, "tobytes"):
            digest.update(f"i{item.mode}{item.size}".encode())
            digest.update(item.tobytes())
        else:
            digest.update(repr(item).encode())
    return digest.hexdigest()


@dataclass
class EmbeddingCache:
    root: Path
    max_bytes: int = 10 * 1024**3
    hits: int = 0
    misses: int = 0
    events: list[str] = field(default_factory=list)

    def get_or_encode(
        self, model_key: str, role: str, items: Sequence[Any], encode: Callable[[], torch.Tensor]
    ) -> torch.Tensor:
        key = hashlib.blake2b(f"{model_key}|{role}|{inputs_fingerprint(items)}".encode(), digest_size=16).hexdigest()
        path = self.root / f"{key}.npy"
        if path.is_file():
            self.hits += 1
            self.events.append(f"hit {role} ({len(items)})")
            os.utime(path)  # recently used
            log.info("embedding cache hit: %d %s embeddings from %s", len(items), role, path.name)
            return torch.from_numpy(np.load(path))
        self.misses += 1
        self.events.append(f"miss {role} ({len(items)})")
        embeddings = encode()
        if isinstance(embeddings, torch.Tensor):
            self._store(path, embeddings.float().cpu().numpy())
        return embeddings

    def _store(self, path: Path, array: np.ndarray) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.root, suffix=".partial", delete=False) as handle:
            np.save(handle, array)
        os.replace(handle.name, path)  # readers never see half an entry
        self._evict()

    def _evict(self) -> None:
        entries = sorted(self.root.glob("*.npy"), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in entries)
        while entries and total > self.max_bytes:
            oldest = entries.pop(0)
            total -= oldest.stat().st_size
            oldest.unlink(missing_ok=True)
            log.info("embedding cache: evicted %s", oldest.name)
