// The labelling page: plain JavaScript, no libraries, served from the package (works offline).
"use strict";

const state = { pages: [], queries: [], shown: null, editing: null, relevant: new Map() };
const $ = (id) => document.getElementById(id);

function imageUrl(pageId, px) {
  return `/api/image?id=${encodeURIComponent(pageId)}&px=${px}`;
}

function label(pageId) {
  const page = state.pages.find((p) => p.page_id === pageId);
  if (!page) return pageId;
  return page.page === null ? page.file : `${page.file} p.${page.page}`;
}

function say(text, isError) {
  const box = $("message");
  box.textContent = text;
  box.className = isError ? "error" : "";
  box.hidden = false;
}

async function api(method, url, body) {
  const options = { method, headers: { "Content-Type": "application/json" } };
  if (body !== undefined) options.body = JSON.stringify(body);
  const response = await fetch(url, options);
  const data = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) {
    const detail = data.error || (data.detail && JSON.stringify(data.detail)) || response.statusText;
    throw new Error(detail);
  }
  return data;
}

function thumb(pageId, px, extra) {
  const box = document.createElement("div");
  box.className = "thumb";
  box.dataset.pageId = pageId;
  const img = document.createElement("img");
  img.loading = "lazy";
  img.src = imageUrl(pageId, px);
  img.alt = label(pageId);
  const caption = document.createElement("div");
  caption.textContent = label(pageId);
  box.append(img, caption);
  if (extra) extra(box);
  return box;
}

function renderPages() {
  const covered = new Set();
  state.queries.forEach((q) => q.relevant.forEach((j) => { if (j.grade > 0) covered.add(j.page_id); }));
  const grid = $("pages");
  grid.replaceChildren(...state.pages.map((p) => thumb(p.page_id, 200, (box) => {
    box.classList.toggle("covered", covered.has(p.page_id));
    box.classList.toggle("selected", state.shown === p.page_id);
    box.addEventListener("click", () => show(p.page_id));
  })));
}

function show(pageId) {
  state.shown = pageId;
  $("zoom").src = imageUrl(pageId, 1100);
  $("zoom-caption").textContent = label(pageId);
  document.querySelectorAll("#pages .thumb").forEach((b) => b.classList.toggle("selected", b.dataset.pageId === pageId));
}

function renderRelevant() {
  const items = [...state.relevant.entries()].map(([pageId, grade]) => thumb(pageId, 160, (box) => {
    const select = document.createElement("select");
    select.className = "grade";
    select.setAttribute("aria-label", `grade of ${label(pageId)}`);
    [0, 1, 2].forEach((g) => select.add(new Option(`grade ${g}`, String(g), false, g === grade)));
    select.addEventListener("change", () => state.relevant.set(pageId, Number(select.value)));
    select.addEventListener("click", (e) => e.stopPropagation());
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove";
    remove.textContent = "remove";
    remove.addEventListener("click", (e) => { e.stopPropagation(); state.relevant.delete(pageId); renderRelevant(); });
    box.append(select, remove);
    box.addEventListener("click", () => show(pageId));
  }));
  $("relevant").replaceChildren(...items);
}

function renderQueries() {
  const items = state.queries.map((q) => {
    const li = document.createElement("li");
    li.dataset.queryId = q.query_id;
    const text = document.createElement("a");
    text.href = "#";
    text.className = "query-text";
    text.textContent = q.query;
    text.addEventListener("click", (e) => { e.preventDefault(); edit(q); });
    const pages = document.createElement("div");
    pages.className = "pages";
    pages.textContent = q.relevant.map((j) => `${label(j.page_id)} (grade ${j.grade})`).join(" · ");
    li.append(text, pages);
    return li;
  });
  $("queries").replaceChildren(...items);
}

function edit(q) {
  state.editing = q ? { query_id: q.query_id, revision: q.revision } : null;
  state.relevant = new Map(q ? q.relevant.map((j) => [j.page_id, j.grade]) : []);
  $("query-text").value = q ? q.query : "";
  $("editor-title").textContent = q ? `Edit ${q.query_id}` : "New query";
  $("delete").hidden = !q;
  if (q && q.relevant.length) show(q.relevant[0].page_id);
  $("candidates").replaceChildren();
  $("candidates-title").hidden = true;
  renderRelevant();
}

function render(data) {
  state.pages = data.pages;
  state.queries = data.queries;
  $("folder").textContent = data.folder;
  const p = data.progress;
  $("progress").textContent = `${p.queries} queries · ${p.pages_covered} / ${p.pages} pages covered`;
  const skipped = Object.keys(data.skipped);
  $("skipped").textContent = skipped.length ? `(skipped, unreadable: ${skipped.join(", ")})` : "";
  $("file-error").hidden = !data.error;
  $("file-error").textContent = data.error || "";
  $("search-model").textContent = data.search_model ? `search: ${data.search_model}` : "search off";
  $("search").disabled = !data.search_model;
  renderPages();
  renderQueries();
}

async function refresh() {
  render(await api("GET", "/api/state"));
}

async function save() {
  const body = {
    query: $("query-text").value,
    relevant: [...state.relevant.entries()].map(([page_id, grade]) => ({ page_id, grade })),
  };
  // The last answer ("saved q0") would stay on screen while this one is out, read as this save's.
  say("saving…", false);
  try {
    let saved;
    if (state.editing) {
      body.base_revision = state.editing.revision;
      saved = await api("PUT", `/api/queries/${encodeURIComponent(state.editing.query_id)}`, body);
    } else {
      saved = await api("POST", "/api/queries", body);
    }
    say(`saved ${saved.query_id}`, false);
    edit(null);
  } catch (error) {
    say(`not saved: ${error.message}`, true);
  }
  await refresh();
}

async function remove() {
  if (!state.editing) return;
  const { query_id, revision } = state.editing;
  say("deleting…", false);
  try {
    await api("DELETE", `/api/queries/${encodeURIComponent(query_id)}?base_revision=${revision}`);
    say(`deleted ${query_id}`, false);
    edit(null);
  } catch (error) {
    say(`not deleted: ${error.message}`, true);
  }
  await refresh();
}

async function search() {
  try {
    $("search").disabled = true;
    say("searching (the first search loads the model and encodes every page)…", false);
    const data = await api("POST", "/api/search", { query: $("query-text").value, top_k: 8 });
    $("candidates-title").hidden = false;
    $("candidates").replaceChildren(...data.results.map((r) => thumb(r.page_id, 160, (box) => {
      const add = document.createElement("button");
      add.type = "button";
      add.className = "add";
      add.textContent = `add (${r.score.toFixed(2)})`;
      add.addEventListener("click", (e) => {
        e.stopPropagation();
        if (!state.relevant.has(r.page_id)) state.relevant.set(r.page_id, 1);
        renderRelevant();
      });
      box.append(add);
      box.addEventListener("click", () => show(r.page_id));
    })));
    say(`${data.results.length} candidates`, false);
  } catch (error) {
    say(`search failed: ${error.message}`, true);
  } finally {
    $("search").disabled = false;
  }
}

async function refreshReview() {
  const data = await api("GET", "/api/review");
  $("review-count").textContent = data.enabled ? `(${data.pending.length} left)` : "(off: start with review=<file>)";
  $("review").replaceChildren(...data.pending.map((item) => {
    const row = document.createElement("div");
    row.className = "review-item";
    row.dataset.generatedId = item.generated_id;
    const img = document.createElement("img");
    img.src = imageUrl(item.page_ids[0], 300);
    const text = document.createElement("textarea");
    text.value = item.query;
    const scores = document.createElement("div");
    scores.className = "scores";
    const filterScores = Object.entries(item.filter).map(([name, value]) => `${name} ${value}`);
    scores.textContent = [item.style, label(item.page_ids[0]), ...filterScores].filter(Boolean).join(" · ");
    const buttons = document.createElement("div");
    for (const action of ["accept", "reject"]) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = action;
      b.textContent = action;
      b.addEventListener("click", async () => {
        try {
          await api("POST", `/api/review/${encodeURIComponent(item.generated_id)}`, { action, query: text.value });
          say(`${action}ed ${item.generated_id}`, false);
        } catch (error) {
          say(`not saved: ${error.message}`, true);
        }
        await refreshReview();
      });
      buttons.append(b);
    }
    const body = document.createElement("div");
    body.append(text, scores, buttons);
    row.append(img, body);
    return row;
  }));
}

function tab(name) {
  $("label-view").hidden = name !== "label";
  $("review-view").hidden = name !== "review";
  $("tab-label").classList.toggle("active", name === "label");
  $("tab-review").classList.toggle("active", name === "review");
  if (name === "review") refreshReview();
}

$("save").addEventListener("click", save);
$("new").addEventListener("click", () => edit(null));
$("delete").addEventListener("click", remove);
$("search").addEventListener("click", search);
$("add-shown").addEventListener("click", () => {
  if (!state.shown) { say("pick a page first (click a thumbnail)", true); return; }
  if (!state.relevant.has(state.shown)) state.relevant.set(state.shown, 2);
  renderRelevant();
});
$("tab-label").addEventListener("click", () => tab("label"));
$("tab-review").addEventListener("click", () => tab("review"));
refresh().then(() => { if (state.pages.length) show(state.pages[0].page_id); });
