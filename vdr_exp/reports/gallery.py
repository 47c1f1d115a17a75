"""What a model retrieved, as pictures: the worst and best queries with their top pages and the relevant page.

A number says a model fails; the gallery says how (a chart confused with its neighbour, a table page
outranking the answer). It joins per_query.csv and rankings.csv to the page images, which nobody should do by
hand. Bounded: ``queries`` worst plus ``queries`` best, ``top_k`` thumbnails each, ``thumb_px`` on the long side.
"""

from __future__ import annotations

import base64
import html
import io
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw, ImageFont, ImageOps

from vdr_exp.data.pages import as_image
from vdr_exp.data.protocols import RetrievalProtocol

RELEVANT, OTHER = (30, 150, 60), (200, 200, 200)


@dataclass(frozen=True)
class Hit:
    doc_id: str
    rank: int | None  # None: the relevant page is not among the retrieved pages (eval.top_k)
    score: float | None
    relevant: bool


@dataclass(frozen=True)
class Row:
    group: str  # "worst" or "best"
    query_id: str
    query: str
    ndcg_at_10: float
    hits: list[Hit]
    answer: Hit  # the first relevant page, wherever it ranked


def select_rows(
    per_query: pd.DataFrame, rankings: pd.DataFrame, qrels: dict[str, dict[str, int]], *, queries: int, top_k: int
) -> list[Row]:
    """The ``queries`` lowest and highest NDCG@10 queries (ties: later first relevant rank is worse), each once."""
    table = per_query.assign(_rank=per_query["first_relevant_rank"].fillna(1e9))
    worst = table.sort_values(["ndcg_at_10", "_rank", "query_id"], ascending=[True, False, True]).head(queries)
    best = table.sort_values(["ndcg_at_10", "_rank", "query_id"], ascending=[False, True, True]).head(queries)
    best = best[~best["query_id"].isin(worst["query_id"])]
    by_query = {qid: frame for qid, frame in rankings.groupby(rankings["query_id"].astype(str), sort=False)}
    rows = []
    for group, frame in (("worst", worst), ("best", best)):
        for record in frame.to_dict("records"):
            qid = str(record["query_id"])
            relevant = {d for d, g in qrels.get(qid, {}).items() if g > 0}
            ranked = by_query.get(qid, rankings.iloc[0:0])
            hits = [
                Hit(str(r.doc_id), int(r.rank), float(r.score), str(r.doc_id) in relevant)
                for r in ranked.sort_values("rank").head(top_k).itertuples()
            ]
            found = [
                Hit(str(r.doc_id), int(r.rank), float(r.score), True)
                for r in ranked.sort_values("rank").itertuples()
                if str(r.doc_id) in relevant
            ]
            answer = found[0] if found else Hit(sorted(relevant)[0] if relevant else "", None, None, True)
            rows.append(Row(group, qid, str(record["query"]), float(record["ndcg_at_10"]), hits, answer))
    return rows


def _thumbnail(page: object, px: int) -> Image.Image:
    thumb = as_image(page).convert("RGB")  # lazily read pages are decoded here, one at a time
    thumb.thumbnail((px, px))
    return thumb


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _caption(hit: Hit) -> str:
    where = f"#{hit.rank}" if hit.rank is not None else "not retrieved (beyond eval.top_k)"
    score = f" {hit.score:.3f}" if hit.score is not None else ""
    return f"{where}{score} p{hit.doc_id}"


def render_png(rows: list[Row], corpus: dict, *, title: str, thumb_px: int, path: Path) -> Path:
    """One picture: a line per query (text, then the top pages, then the relevant page), green = relevant."""
    text_w, pad, caption_h = 260, 8, 18
    columns = max((len(r.hits) for r in rows), default=0) + 1
    cell_w, row_h = thumb_px + pad, thumb_px + caption_h + 2 * pad
    width, height = text_w + columns * cell_w + 3 * pad, 40 + len(rows) * row_h
    sheet = Image.new("RGB", (width, max(height, 60)), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((pad, 10), title, fill="black", font=_font(16))
    for i, row in enumerate(rows):
        top = 40 + i * row_h
        label = f"{row.group.upper()}  q{row.query_id}  NDCG@10 {row.ndcg_at_10:.3f}"
        draw.text((pad, top + pad), label, fill="black", font=_font(12))
        for j, line in enumerate(textwrap.wrap(row.query, 38)[:8]):
            draw.text((pad, top + pad + 18 + 14 * j), line, fill=(60, 60, 60), font=_font(11))
        for j, hit in enumerate([*row.hits, row.answer]):
            left = text_w + j * cell_w + (2 * pad if j == len(row.hits) else 0)
            if hit.doc_id in corpus:
                thumb = ImageOps.expand(
                    _thumbnail(corpus[hit.doc_id], thumb_px - 6), 3, RELEVANT if hit.relevant else OTHER
                )
                sheet.paste(thumb, (left, top + pad))
            caption = ("answer " if j == len(row.hits) else "") + _caption(hit)
            draw.text((left, top + pad + thumb_px + 2), caption, fill="black", font=_font(11))
    sheet.save(path)
    return path


def _data_uri(page: Image.Image, px: int) -> str:
    buffer = io.BytesIO()
    _thumbnail(page, px).save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def render_html(rows: list[Row], corpus: dict, *, title: str, thumb_px: int, path: Path) -> Path:
    """The same gallery as one self-contained page (thumbnails inlined), readable in MLflow's artifact viewer."""

    def figure(hit: Hit, answer: bool = False) -> str:
        colour = "#1e963c" if hit.relevant else "#ccc"
        image = f'<img src="{_data_uri(corpus[hit.doc_id], thumb_px)}">' if hit.doc_id in corpus else ""
        caption = html.escape(("answer " if answer else "") + _caption(hit))
        return f'<figure style="border:3px solid {colour}">{image}<figcaption>{caption}</figcaption></figure>'

    parts = [
        "<!doctype html><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:12px}.row{display:flex;gap:8px;align-items:flex-start;"
        "margin:10px 0;border-top:1px solid #ddd;padding-top:8px}.q{width:260px;flex:none}"
        "figure{margin:0;padding:2px;text-align:center;font-size:11px}.answer{margin-left:16px}</style>",
        f"<h2>{html.escape(title)}</h2><p>Green border: a relevant page. Last picture: the first relevant page.</p>",
    ]
    for row in rows:
        hits = "".join(figure(hit) for hit in row.hits)
        parts.append(
            f'<div class="row"><div class="q"><b>{row.group.upper()}</b> q{html.escape(row.query_id)} '
            f"NDCG@10 {row.ndcg_at_10:.3f}<br>{html.escape(row.query)}</div>{hits}"
            f'<div class="answer">{figure(row.answer, answer=True)}</div></div>'
        )
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def write_gallery(
    per_query: pd.DataFrame,
    rankings: pd.DataFrame,
    protocol: RetrievalProtocol,
    out_dir: Path,
    *,
    title: str,
    queries: int = 4,
    top_k: int = 5,
    thumb_px: int = 160,
) -> list[Path]:
    """gallery.html and gallery.png under ``out_dir``; nothing when ``queries`` is 0."""
    if queries <= 0 or per_query.empty:
        return []
    rows = select_rows(per_query, rankings, protocol.qrels, queries=queries, top_k=top_k)
    out_dir.mkdir(parents=True, exist_ok=True)
    options = {"title": title, "thumb_px": thumb_px}
    return [
        render_html(rows, protocol.corpus, path=out_dir / "gallery.html", **options),
        render_png(rows, protocol.corpus, path=out_dir / "gallery.png", **options),
    ]
