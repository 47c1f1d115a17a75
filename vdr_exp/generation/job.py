"""The generation job: pages -> generated queries (resumable) -> filter -> dataset, kept queries, mined training set."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path

import pypdfium2 as pdfium
from tqdm.auto import tqdm

from vdr_exp.data import dataset_folder, hub
from vdr_exp.errors import InputError
from vdr_exp.fixtures.tiny_generator import ensure_tiny_generator
from vdr_exp.generation import filter as pair_filter
from vdr_exp.generation import mining, vlm
from vdr_exp.generation.config import GenerateRunConfig
from vdr_exp.jobs import steps
from vdr_exp.labelling.pages import PageIndex, index_folder
from vdr_exp.runs.job_spec import JobSpec

log = logging.getLogger(__name__)
SUMMARY = "generation.json"
RAW = "raw.jsonl"


def target(cfg: GenerateRunConfig) -> Path:
    source = Path(cfg.dataset.path).expanduser().resolve()
    if cfg.generate.out:
        out = Path(cfg.generate.out).expanduser().resolve()
    else:
        tag = hashlib.sha256(str(source).encode()).hexdigest()[:8]
        out = (Path(cfg.paths.output_dir) / "generated" / f"{source.name}-{tag}").expanduser().resolve()
    if out == source or out in source.parents or source in out.parents:
        raise InputError(f"generate.out={out} is inside or above your documents ({source}); choose another folder.")
    dataset_folder.check_replaceable(out, "generate.out", (SUMMARY, RAW))
    out.mkdir(parents=True, exist_ok=True)
    (out / dataset_folder.MARKER).write_text('{"kind": "generated"}\n')
    return out


def generator_path(cfg: GenerateRunConfig) -> str:
    if not cfg.generator.fixture:
        hub.ensure_available(cfg.generator.path, "model", "generator.path")
        return cfg.generator.path
    return str(ensure_tiny_generator(Path(cfg.fixtures.root) / "models"))


def generate_raw(cfg: GenerateRunConfig, index: PageIndex, page_ids: list[str], raw_file: Path) -> list[dict]:
    """One record per (page, style): the model's text. Records already in ``raw_file`` for the same generator
    and prompt are reused, so an interrupted run continues where it stopped."""
    n = cfg.generate.per_style
    g = cfg.generator
    settings = f"temperature={g.temperature} seed={g.seed} max_new_tokens={g.max_new_tokens} pixels={g.min_pixels}..{g.max_pixels}"
    wanted = [(pid, style, vlm.prompt_for(style, n)) for pid in page_ids for style in cfg.generate.styles]
    done = {}
    if raw_file.is_file():
        for line in raw_file.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record.get("generator") == cfg.generator.path and record.get("settings") == settings:
                done[(record["page_id"], record["style"], record["prompt"])] = record
    todo = [w for w in wanted if w not in done]
    log.info("generation: %d of %d (page, style) pairs left (%s)", len(todo), len(wanted), raw_file)
    if todo:
        generator = vlm.Generator(cfg.generator)
        batch = cfg.generator.batch_size
        with raw_file.open("a", encoding="utf-8") as sink:
            for start in tqdm(range(0, len(todo), batch), desc="generating", unit="batch"):
                chunk = todo[start : start + batch]
                texts = generator.generate([index.image(pid) for pid, _, _ in chunk], [p for _, _, p in chunk])
                for (pid, style, prompt), text in zip(chunk, texts, strict=True):
                    record = {
                        "page_id": pid,
                        "style": style,
                        "prompt": prompt,
                        "generator": g.path,
                        "settings": settings,
                    }
                    done[(pid, style, prompt)] = {**record, "text": text}
                    sink.write(json.dumps(done[(pid, style, prompt)], ensure_ascii=False) + "\n")
                sink.flush()
    return [done[w] for w in wanted]


def candidates_from(raw: list[dict], n: int) -> list[pair_filter.Candidate]:
    """``n`` candidates per (page, style); a missing or unreadable answer is an empty candidate (dropped: empty)."""
    out = []
    for record in raw:
        queries = vlm.parse_queries(record["text"], n)
        for k in range(n):
            gid = f"g{len(out)}"
            text = queries[k] if k < len(queries) else ""
            out.append(pair_filter.Candidate(gid, record["page_id"], record["style"], text, record["text"]))
    return out


def require_some(candidates: list[pair_filter.Candidate], generator: str, raw_file: Path) -> list:
    if not any(c.query for c in candidates):
        raise InputError(
            f"the generator {generator} returned no readable query for any page (its raw answers are kept in "
            f"{raw_file}); check generator.path, the prompt and generator.max_new_tokens."
        )
    return candidates


def page_texts(index: PageIndex, page_ids: list[str]) -> dict[str, str]:
    """The text layer of each PDF page (none for images, multi-page scans and PDF pages without text)."""
    texts: dict[str, str] = {}
    for pid in page_ids:
        ref = index.refs[pid]
        if ref.page is None or not ref.file.lower().endswith(".pdf"):
            continue
        document = pdfium.PdfDocument(str(index.folder.root / ref.file))
        try:
            texts[pid] = document[ref.page - 1].get_textpage().get_text_range()
        finally:
            document.close()
    return texts


def run_generation(spec: JobSpec[GenerateRunConfig]) -> dict[str, float]:
    cfg = spec.cfg
    out = target(cfg)
    with steps.start_run(spec):
        steps.log_config(spec)
        steps.prepare_fixtures(cfg)
        cfg = dataclasses.replace(cfg, generator=dataclasses.replace(cfg.generator, path=generator_path(cfg)))
        index = index_folder(Path(cfg.dataset.path).expanduser(), cfg.dataset.dpi, Path(cfg.dataset.page_cache))
        page_ids = list(index.refs)[: cfg.generate.max_pages]
        raw = generate_raw(cfg, index, page_ids, out / RAW)
        candidates = require_some(candidates_from(raw, cfg.generate.per_style), cfg.generator.name, out / RAW)
        pair_filter.check_text(candidates, page_texts(index, page_ids), cfg.generate.filter)
        model = steps.load_model(spec).model
        corpus = mining.corpus_protocol(index)
        pages = mining.encode_pages(model, corpus, cfg.mine.batch_size)
        queries = mining.encode_queries(model, [c.query or " " for c in candidates], cfg.mine.batch_size)
        pair_filter.check_embeddings(candidates, queries, pages, list(corpus.corpus), cfg.generate.filter)
        return mining.finish(cfg, out, index, candidates, model, corpus, pages)
