"""The labelling page's web app: a JSON API over the query store, the page images, search and review.

Framework: FastAPI on uvicorn. Both are already installed with MLflow 3 (its server is built on them), so the
page adds no dependency; FastAPI is widely used and maintained, declares the request bodies as typed models
(a malformed request is refused with a message before our code runs), and serves the page's own static files,
shipped inside the package (no CDN: the page works offline). Everything the page changes goes through
:class:`~vdr_exp.labelling.store.QueryStore`; errors come back as ``{"error": "..."}`` with 409 (changed
elsewhere), 404 (no such page) or 422 (fix the input).
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from vdr_exp.data.layouts.local_docs import doc_id
from vdr_exp.errors import InputError
from vdr_exp.labelling.pages import PageIndex
from vdr_exp.labelling.review import ReviewQueue
from vdr_exp.labelling.search import PageSearch
from vdr_exp.labelling.store import Conflict, QueryStore, revision

STATIC = resources.files("vdr_exp.labelling") / "static"


class Judgement(BaseModel):
    page_id: str
    grade: int = 1


class QueryIn(BaseModel):
    query: str
    relevant: list[Judgement] = Field(default_factory=list)
    base_revision: str | None = None


class SearchIn(BaseModel):
    query: str
    top_k: int = Field(default=8, ge=1, le=100)


class DecisionIn(BaseModel):
    action: str
    query: str | None = None


def _view(record: dict) -> dict:
    """A stored query as the page shows it: page ids instead of file/page, and its revision."""
    relevant = [{"page_id": doc_id(r["file"], r.get("page")), "grade": r.get("grade", 1)} for r in record["relevant"]]
    return {
        "query_id": record["query_id"],
        "query": record["query"],
        "relevant": relevant,
        "revision": revision(record),
        "source": record.get("source", "human"),
    }


def _state(index: PageIndex, store: QueryStore, search: PageSearch | None) -> dict:
    error, queries = None, []
    try:
        queries = [_view(r) for r in store.read()]
    except InputError as failure:  # a hand edit gone wrong: shown, and every save refused until it is fixed
        error = f"{failure} Nothing can be saved until the file is fixed; nothing was changed."
    covered = {j["page_id"] for q in queries for j in q["relevant"] if j["grade"] > 0}
    pages = [{"page_id": pid, "file": ref.file, "page": ref.page} for pid, ref in index.refs.items()]
    return {
        "folder": str(index.folder.root),
        "queries_file": str(store.path),
        "pages": pages,
        "skipped": index.skipped,
        "queries": queries,
        "error": error,
        "search_model": search.name if search else None,
        "progress": {"pages": len(pages), "pages_covered": len(covered & set(index.refs)), "queries": len(queries)},
    }


def _judgements(body: QueryIn) -> list[dict]:
    return [j.model_dump() for j in body.relevant]


def build_app(
    index: PageIndex, store: QueryStore, search: PageSearch | None = None, review: ReviewQueue | None = None
) -> FastAPI:
    app = FastAPI(title="vdr-exp labelling", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.exception_handler(InputError)
    async def _refused(_: Request, error: InputError) -> JSONResponse:
        status = 409 if isinstance(error, Conflict) else 404 if "does not exist" in str(error) else 422
        return JSONResponse({"error": str(error)}, status_code=status)

    @app.get("/")
    def page() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"))

    @app.get("/api/state")
    def state() -> dict:
        return _state(index, store, search)

    @app.get("/api/image")
    def image(id: str, px: int = 220) -> Response:
        if id not in index.refs:
            raise InputError(f"page {id!r} does not exist in {index.folder.root}.")
        return Response(index.jpeg(id, max(32, min(px, 2400))), media_type="image/jpeg")

    @app.post("/api/queries")
    def add(body: QueryIn) -> dict:
        return _view(store.add(body.query, _judgements(body)))

    @app.put("/api/queries/{query_id}")
    def update(query_id: str, body: QueryIn) -> dict:
        if body.base_revision is None:
            raise InputError("an edit must name the revision it started from (base_revision); reload the page.")
        return _view(store.update(query_id, body.base_revision, body.query, _judgements(body)))

    @app.delete("/api/queries/{query_id}")
    def delete(query_id: str, base_revision: str) -> dict:
        store.delete(query_id, base_revision)
        return {"deleted": query_id}

    @app.post("/api/search")
    def find(body: SearchIn) -> dict:
        if search is None:
            raise InputError("search is off (search=false); start the page with a model to search pages.")
        if not body.query.strip():
            raise InputError("the query is empty (only spaces); write it before searching.")
        return {"results": [{"page_id": p, "score": s} for p, s in search.search(body.query, body.top_k)]}

    @app.get("/api/review")
    def pending() -> dict:
        return {"enabled": review is not None, "pending": review.pending() if review else []}

    @app.post("/api/review/{generated_id}")
    def decide(generated_id: str, body: DecisionIn) -> dict:
        if review is None:
            raise InputError("review mode is off; start the page with review=<generated queries.jsonl>.")
        return review.decide(generated_id, body.action, body.query)

    return app
