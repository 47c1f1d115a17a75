"""Evaluation embeddings kept on disk, so a frozen model never encodes the same pages twice.

An entry is keyed by everything that changes the vectors: the model's weights (hashed tensor by tensor), its
module stack and prompts, the processor's pixel budget, and the content of what is encoded (texts, image
pixels) with its role (query or document); the caller adds the model folder's tokenizer, chat template and
configs (:func:`vdr_exp.data.content.small_files_digest`). Change any of them and the key changes; nothing is
ever invalidated by hand. Entries are ``<key>-<checksum>.npy`` files, used only when they verify (a damaged one
is recomputed and rewritten); the folder is capped in size (least recently used go first).
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

from vdr_exp.data.pages import StoredPage

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


def _checksum(array: np.ndarray) -> str:
    return xxhash.xxh3_64_hexdigest(np.ascontiguousarray(array).tobytes())


def inputs_fingerprint(items: Sequence[Any]) -> str:
    """Content of what is encoded: texts, or image mode, size and pixels."""
    digest = _digest()
    for item in items:
        if isinstance(item, str):
            digest.update(b"t" + item.encode())
        elif isinstance(item, StoredPage):  # a compressed page: its file bytes, without decoding it
            digest.update(b"p" + xxhash.xxh3_128_digest(item.data))
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
        cached = self._load(key, len(items))
        if cached is not None:
            self.hits += 1
            self.events.append(f"hit {role} ({len(items)})")
            log.info("embedding cache hit: %d %s embeddings (%s)", len(items), role, key)
            return torch.from_numpy(cached)
        self.misses += 1
        self.events.append(f"miss {role} ({len(items)})")
        embeddings = encode()
        if isinstance(embeddings, torch.Tensor):
            self._store(key, embeddings.float().cpu().numpy())
        return embeddings

    def _load(self, key: str, rows: int) -> np.ndarray | None:
        """An entry only if it verifies: it parses, has one row per input, and its bytes hash to the checksum
        in its name. A damaged one (a truncated write, a bad disk block) is removed and recomputed."""
        for path in self.root.glob(f"{key}-*.npy"):
            try:
                array = np.load(path, allow_pickle=False)
                ok = array.ndim == 2 and len(array) == rows and _checksum(array) == path.stem.rsplit("-", 1)[1]
            except (OSError, ValueError, EOFError):
                ok = False
            if ok:
                os.utime(path)  # recently used
                return array
            log.warning("embedding cache: %s is damaged; removing it and encoding again", path.name)
            self.events.append(f"damaged {path.name}")
            path.unlink(missing_ok=True)
        return None

    def _store(self, key: str, array: np.ndarray) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.root, suffix=".partial", delete=False) as handle:
            np.save(handle, array)
        os.replace(handle.name, self.root / f"{key}-{_checksum(array)}.npy")  # readers never see half an entry
        self._evict()

    def _evict(self) -> None:
        entries = sorted(self.root.glob("*.npy"), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in entries)
        while entries and total > self.max_bytes:
            oldest = entries.pop(0)
            total -= oldest.stat().st_size
            oldest.unlink(missing_ok=True)
            log.info("embedding cache: evicted %s", oldest.name)
