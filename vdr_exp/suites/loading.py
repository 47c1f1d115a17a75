"""An MTEB task -> one retrieval protocol per subset (language), loaded by mteb's own loader.

``mteb.get_task(name).load_data()`` is the code a Hub run uses: ViDoRe v1/v2 tasks read their BEIR-style
``queries``/``corpus``/``qrels`` configs, v3 tasks go through mteb's ``RetrievalDatasetLoader``. A local folder
(the offline miniatures, or a mirror on a cluster without Hub access) takes the place of the Hub id in a copy of
the task's metadata; nothing else changes. The ids, images and grades mteb hands back become a
:class:`~vdr_exp.data.protocols.RetrievalProtocol`, so scoring, the embedding cache and the artifacts are those
of every other evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vdr_exp.data.pages import PageCorpus
from vdr_exp.data.protocols import RetrievalProtocol
from vdr_exp.errors import InputError


@dataclass(frozen=True)
class LoadedTask:
    name: str
    revision: str
    main_score: str
    split: str
    # subset -> its protocol and its languages (ISO 639-3 + script), subsets with queries only
    subsets: dict[str, tuple[RetrievalProtocol, tuple[str, ...]]]
    # Reranking tasks: subset -> query id -> its candidate pages (mteb's ``top_ranked``); empty for retrieval.
    candidates: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # The cut-offs mteb scores this task at (its ``k_values``).
    k_values: tuple[int, ...] = ()


def _task(name: str, subsets: list[str] | None, local_path: str | None):
    # optional extra (mteb): only suites load it
    import mteb

    task = mteb.get_task(name, hf_subsets=subsets) if subsets else mteb.get_task(name)
    if local_path:
        task.metadata = task.metadata.model_copy(deep=True)  # the class's metadata is shared: copy, then swap
        task.metadata.dataset["path"] = local_path
    return task


def _protocol(name: str, data: dict) -> RetrievalProtocol:
    """mteb's split data (``corpus``/``queries`` datasets, ``relevant_docs``) -> a protocol, checked."""
    corpus = PageCorpus(data["corpus"])  # compressed pages, decoded chunk by chunk when encoded
    queries = {str(row["id"]): row["text"] for row in data["queries"]}
    qrels = {str(q): {str(d): grade for d, grade in docs.items()} for q, docs in data["relevant_docs"].items()}
    qrels = {q: docs for q, docs in qrels.items() if q in queries}
    unknown = sorted({d for docs in qrels.values() for d in docs if d not in corpus})
    if unknown:
        raise InputError(
            f"{name}: qrels name {len(unknown)} page(s) missing from the corpus (e.g. {unknown[:3]}); "
            "the dataset's qrels and corpus configs do not belong together: rebuild or re-download it."
        )
    return RetrievalProtocol(name, queries, corpus, qrels)


def load_task(name: str, *, subsets: list[str] | None = None, local_path: str | None = None) -> LoadedTask:
    """Load ``name`` through mteb (``local_path`` in place of the Hub id); a clear error when it cannot."""
    task = _task(name, subsets, local_path)
    meta = task.metadata
    try:
        task.load_data()
    except Exception as error:  # noqa: BLE001 - datasets raises many types; the message says what is wrong
        where = local_path or f"{meta.dataset['path']}@{meta.dataset['revision']}"
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        hint = " (a local folder needs every config of the task's Hub layout)" if local_path else ""
        raise InputError(f"{name}: mteb could not load {where}: {first}{hint}") from None
    task.convert_v1_dataset_format_to_v2(num_proc=None)  # v1/v2 loaders fill queries/corpus; v3 fills dataset
    split = meta.eval_splits[0]
    langs = meta.eval_langs if isinstance(meta.eval_langs, dict) else {"default": meta.eval_langs}
    loaded, candidates = {}, {}
    for subset, splits in task.dataset.items():
        if subset not in task.hf_subsets or split not in splits or len(splits[split]["queries"]) == 0:
            continue
        label = name if subset == "default" else f"{name}/{subset}"
        loaded[subset] = (_protocol(label, splits[split]), tuple(langs.get(subset, ())))
        if splits[split].get("top_ranked") is not None:
            candidates[subset] = _candidates(label, splits[split]["top_ranked"], loaded[subset][0])
    if not loaded:
        raise InputError(f"{name}: no queries in any of the subsets {task.hf_subsets}; check benchmark.subsets.")
    return LoadedTask(name, meta.dataset["revision"], meta.main_score, split, loaded, candidates, tuple(task.k_values))


def _candidates(name: str, top_ranked: dict, protocol: RetrievalProtocol) -> dict[str, list[str]]:
    """A reranking task's candidate lists, checked against its corpus (ids as strings, as mteb keeps them)."""
    lists = {str(q): [str(d) for d in docs] for q, docs in top_ranked.items()}
    unknown = sorted({d for docs in lists.values() for d in docs if d not in protocol.corpus})
    if unknown:
        raise InputError(
            f"{name}: the candidate lists (top_ranked) name {len(unknown)} page(s) missing from the corpus "
            f"(e.g. {unknown[:3]}); rebuild or re-download the dataset."
        )
    return lists
