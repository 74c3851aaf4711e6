// Sessions and tasks across families, filtered and paginated; new ones appear live.

import { consoleApi } from "../api.js";
import { code, cost, empty, h, idCell, kindBadge, KIND_LABELS, num, pill, throttle, time, timelineHref, tokens } from "../dom.js";
import { Pager } from "./pager.js";

const STATUSES = ["running", "completed", "waiting", "finished", "failed", "errored", "queued", "ready", "in_progress", "canceled", "pending"];
// Log entry types that add or change a listed item.
const CHANGES = /^(session\.|tracer\.task\.|tracer\.session\.|execution\.|task\.|task_run\.)/;

export const title = () => "Sessions & tasks";

export async function render(ctx) {
  const q = ctx.query;
  const filters = { kind: q.get("kind") || "", status: q.get("status") || "", runtime: q.get("runtime") || "", q: q.get("q") || "" };
  const kind = h(
    "select",
    { "aria-label": "kind", name: "kind" },
    h("option", { value: "" }, "all kinds"),
    ...Object.entries(KIND_LABELS)
      .filter(([k]) => k !== "agent")
      .map(([k, label]) => h("option", { value: k, selected: k === filters.kind }, label))
  );
  const status = h("input", { type: "text", name: "status", placeholder: "status", list: "statuses", value: filters.status, size: 12, "aria-label": "status" });
  const runtime = h("input", { type: "text", name: "runtime", placeholder: "runtime", value: filters.runtime, size: 14, "aria-label": "runtime" });
  const search = h("input", { type: "search", name: "q", placeholder: "Search ids and titles  ( / )", value: filters.q, "data-search": true, "aria-label": "search" });
  const body = h("tbody");
  const table = h(
    "table.list",
    { id: "sessions" },
    h("thead", null, h("tr", null, ...["kind", "title", "id", "status", "runtime", "workspace", "created", "updated"].map((c) => h("th", null, c)), h("th.num", null, "events"), h("th.num", null, "tokens in/out"), h("th.num", null, "cost"))),
    body
  );
  const news = h("div.more", { hidden: true }, h("button", { type: "button", onclick: () => reload() }, "New items: show them"));
  const panel = h("div.panel.flush", null, news, table);
  ctx.root.append(
    h("div.head", null, h("h1", null, "Sessions & tasks"), h("span.sub", null, "runtime sessions, tracer tasks and sessions, executions and queue tasks, newest first")),
    h(
      "form.filters",
      { onsubmit: (ev) => ev.preventDefault() },
      kind,
      status,
      runtime,
      search,
      h("datalist", { id: "statuses" }, ...STATUSES.map((s) => h("option", { value: s })))
    ),
    panel
  );

  const pager = new Pager({
    fetch: (token) => consoleApi.sessions({ kind: kind.value, status: status.value.trim(), runtime: runtime.value.trim(), query: search.value.trim(), page_token: token }),
    items: (page) => page.items || [],
    row: sessionRow,
    body,
    after: panel,
    empty: () =>
      anyFilter()
        ? empty("Nothing matches these filters", "Clear a filter or search for part of an id or title.")
        : empty(
            "No sessions or tasks yet",
            h("span", null, "They appear here as runtimes report them: Claude Code or Codex hooks (", code("agentplane hooks install"), "), ", code("POST /sessions"), ", the tracer's ", code("/ingest/v1/sessions/ensure"), ", executions or queue tasks.")
          ),
    fail: ctx.fail,
  });
  const anyFilter = () => kind.value || status.value.trim() || runtime.value.trim() || search.value.trim();

  const reload = () => {
    news.hidden = true;
    ctx.setQuery({ kind: kind.value, status: status.value.trim(), runtime: runtime.value.trim(), q: search.value.trim() });
    return pager.reset();
  };
  const typed = debounce(reload, 200);
  kind.addEventListener("change", reload);
  for (const input of [status, runtime, search]) input.addEventListener("input", typed);
  ctx.onDispose(() => pager.stop());

  // New or changed items: the first page refreshes itself; further pages wait for a click.
  const refresh = throttle(() => (pager.pages > 1 ? (news.hidden = false) : pager.reset(true)), 1000);
  ctx.onDispose(refresh.cancel);
  ctx.onDispose(
    ctx.live.subscribe((batch) => {
      if (batch.some((e) => CHANGES.test(e.type))) refresh();
    })
  );

  if (q.get("focus") === "search") search.focus();
  await pager.reset();
}

function sessionRow(s) {
  const link = timelineHref(s.kind, s.id);
  return h(
    "tr",
    { "data-nav": true, "data-href": link, dataset: { id: s.id, kind: s.kind }, onclick: (ev) => ev.target.closest("a") || (location.hash = link) },
    h("td", null, kindBadge(s.kind)),
    h("td.title", { title: s.title }, h("a", { href: link }, s.title || "(untitled)")),
    idCell(s.id),
    h("td", null, pill(s.status)),
    h("td.nowrap", null, s.runtime || h("span.muted", null, "–")),
    h("td.nowrap.muted", null, s.workspace),
    h("td.nowrap", null, time(s.created_at)),
    h("td.nowrap", null, time(s.updated_at)),
    h("td.num", null, Number(s.event_count) ? num(s.event_count) : "–"),
    h("td.num", null, tokens(s.input_tokens, s.output_tokens)),
    h("td.num", null, cost(s.cost_usd))
  );
}

function debounce(fn, ms) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}
