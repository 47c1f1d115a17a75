"""What a local file or folder holds, as short keys: so that a result is never reused for changed inputs.

Two strengths, for two costs:
- :func:`stat_key`: names, sizes and modification times of every file (cheap even for thousands of pages).
  Any edit, copy or retraining into the same folder changes it. Used to key dataset caches and to tell
  whether a finished run read the same data and model as a new job (skip-completed).
- :func:`small_files_digest`: the bytes of a model folder's small files (tokenizer, chat template, processor
  and module configs), for the embedding cache, whose key already covers the weights tensor by tensor.
"""

from __future__ import annotations

import os
from pathlib import Path

import xxhash

# Weight files are hashed from the loaded tensors (vdr_exp.retrieval.embedding_cache); everything else in a
# model folder is small and decides how inputs are turned into tokens and pixels.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack", ".onnx")
SMALL_FILE_BYTES = 64 * 1024**2


def files_under(root: Path) -> list[Path]:
    """Every file under ``root``, following symlinked folders once (sorted, so keys are stable)."""
    if root.is_file():
        return [root]
    seen: set[str] = set()
    found = []
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders.clear()
            continue
        seen.add(real)
        subfolders.sort()
        found += [Path(folder) / name for name in sorted(names)]
    return [p for p in found if p.is_file()]


def stat_key(path: str | Path) -> str | None:
    """Names, sizes and mtimes of every file under a local path; None when the path is not local (a hub id)."""
    root = Path(path).expanduser()
    if not root.exists():
        return None
    digest = xxhash.xxh3_128()
    for file in files_under(root):
        stat = file.stat()
        name = file.relative_to(root) if file != root else file.name
        digest.update(os.fsencode(name) + f"|{stat.st_size}|{stat.st_mtime_ns}\n".encode())  # any bytes a name holds
    return digest.hexdigest()


def small_files_digest(path: str | Path) -> str | None:
    """The bytes of every non-weight file of a local model folder; None when the path is not local."""
    root = Path(path).expanduser()
    if not root.is_dir():
        return None
    digest = xxhash.xxh3_128()
    for file in files_under(root):
        if file.suffix in WEIGHT_SUFFIXES or file.stat().st_size > SMALL_FILE_BYTES:
            continue
        digest.update(os.fsencode(file.relative_to(root)) + b"\n")
        digest.update(file.read_bytes())
    return digest.hexdigest()
