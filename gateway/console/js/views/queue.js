// The task queue: tasks by state and priority, held leases with their time
// left counting down, and a task's runs (attempts, holders, how each ended).

import { consoleApi } from "../api.js";
import { code, fill, duration, empty, h, idCell, num, pill, throttle, time } from "../dom.js";
import { Pager } from "./pager.js";

const CHANGES = /^(task\.|task_run\.)/;
const LOW_MS = 30_000;

export const title = (ctx) => (ctx.parts[0] ? `Task ${ctx.parts[0]}` : "Queue");

export function render(ctx) {
  return ctx.parts[0] ? renderTask(ctx, ctx.parts[0]) : renderQueue(ctx);
}

// Lease countdowns: each `.left` element holds its deadline on this page's clock.
function countdowns(ctx) {
  const tick = () => {
    const now = performance.now();
    for (const el of ctx.root.querySelectorAll(".left[data-until]")) {
      const left = Number(el.dataset.until) - now;
      el.textContent = left >= 0 ? duration(Math.floor(left / 1000) * 1000) : `overdue ${duration(-left)}`;
      el.classList.toggle("low", left >= 0 && left < LOW_MS);
      el.classList.toggle("over", left < 0);
    }
  };
  const timer = setInterval(tick, 1000);
  ctx.onDispose(() => clearInterval(timer));
  return tick;
}

function leftCell(run) {
  if (!run || !run.lease_until || !Number(run.lease_ms_left)) return h("td.muted", null, "–");
  const el = h("span.left", { dataset: { until: String(performance.now() + Number(run.lease_ms_left)) }, title: `lease until ${new Date(run.lease_until).toLocaleString()}` });
  return h("td.num", null, el);
}

function holder(run) {
  if (!run || !(run.holder_ref || run.session_id)) return h("span.muted", null, "–");
  return h("span.mono", { title: `${run.holder_kind || "holder"} ${run.holder_ref || ""} · session ${run.session_id || "–"}` }, run.holder_ref || run.session_id);
}

async function renderQueue(ctx) {
  const filters = { state: ctx.query.get("state") || "", priority: ctx.query.get("priority") || "" };
  const states = h("div.chips", { id: "by-state" });
  const priorities = h("div.chips", { id: "by-priority" });
  const leases = h("tbody");
  const leasesBox = h("div");
  const body = h("tbody");
  const table = h(
    "table.list",
    { id: "queue-tasks" },
    h("thead", null, h("tr", null, ...["task", "title", "priority", "state", "attempts", "latest run", "holder", "lease left", "created", "updated"].map((c) => h("th", null, c)))),
    body
  );
  const tasksPanel = h("div.panel.flush", null, h("h2", null, "Tasks"), table);
  ctx.root.append(
    h("div.head", null, h("h1", null, "Task queue"), h("span.sub", null, "newest first; leases soonest to expire first")),
    h("section.panel", null, h("div.filters", null, h("strong", null, "State"), states), h("div.filters", null, h("strong", null, "Priority"), priorities)),
    h(
      "section.panel.flush",
      null,
      h("h2", null, "Held leases"),
      h("table.list", { id: "leases" }, h("thead", null, h("tr", null, ...["run", "task", "attempt", "status", "holder", "claimed", "last heartbeat", "time left"].map((c) => h("th", null, c)))), leases),
      leasesBox
    ),
    h("section", null, tasksPanel)
  );
  const tick = countdowns(ctx);

  const chips = (el, counts, key) => {
    const all = counts.reduce((s, c) => s + Number(c.count), 0);
    const chip = (name, label, count) =>
      h(
        `button.chip${filters[key] === name ? ".on" : ""}`,
        { type: "button", dataset: { value: name }, onclick: () => { filters[key] = filters[key] === name ? "" : name; ctx.setQuery(filters); pager.reset(); } },
        label,
        h("b", null, num(count))
      );
    el.replaceChildren(chip("", "all", all), ...counts.map((c) => chip(c.name, c.name, c.count)));
  };

  const pager = new Pager({
    fetch: (token) => consoleApi.queue({ state: filters.state, priority: filters.priority, page_token: token }),
    items: (page) => {
      if (page.tasks_by_state) {
        chips(states, page.tasks_by_state, "state");
        chips(priorities, page.tasks_by_priority || [], "priority");
      }
      if (pager.pages === 0) drawLeases(page.leases || [], new Map((page.tasks || []).map((t) => [t.id, t])));
      return page.tasks || [];
    },
    row: taskRow,
    body,
    after: table,
    empty: () =>
      filters.state || filters.priority
        ? empty("No task in this state", "Pick another state or priority above.")
        : empty("The queue is empty", h("span", null, "Create a task with ", code("agentplane tasks create \"Fix the build\""), " or ", code("POST /api/tasks"), "; agents claim runs with ", code("/api/agent/tasks/claim-next"), ".")),
    fail: ctx.fail,
    onPage: tick,
  });
  ctx.onDispose(() => pager.stop());

  const drawLeases = (runs, tasks) => {
    leases.replaceChildren(
      ...runs.map((r) =>
        h(
          "tr",
          { "data-nav": true, "data-href": `#/queue/${encodeURIComponent(r.task_id)}` },
          idCell(r.id),
          h("td.title", { title: r.task_id }, h("a", { href: `#/queue/${encodeURIComponent(r.task_id)}` }, taskName(tasks.get(r.task_id), r.task_id))),
          h("td.num", null, num(r.attempt)),
          h("td", null, pill(r.status)),
          h("td", null, holder(r)),
          h("td.nowrap", null, time(r.claimed_at)),
          h("td.nowrap", null, time(r.heartbeat_at)),
          leftCell(r)
        )
      )
    );
    leasesBox.replaceChildren(runs.length ? "" : empty("No lease is held", "An agent's claim shows here with the time its lease has left."));
  };

  const refresh = throttle(() => pager.reset(true), 1000);
  ctx.onDispose(refresh.cancel);
  ctx.onDispose(ctx.live.subscribe((batch) => batch.some((e) => CHANGES.test(e.type)) && refresh()));
  await pager.reset();
}

function taskName(t, id) {
  return t ? `${t.identifier} ${t.title}` : id;
}

function taskRow(t) {
  const run = t.latest_run;
  const link = `#/queue/${encodeURIComponent(t.id)}`;
  return h(
    "tr",
    { "data-nav": true, "data-href": link, dataset: { id: t.id }, onclick: (ev) => ev.target.closest("a") || (location.hash = link) },
    h("td.nowrap.mono", null, h("a", { href: link }, t.identifier || t.id)),
    h("td.title", { title: t.title }, t.title),
    h("td", null, pill(t.priority)),
    h("td", null, pill(t.status), t.paused ? [" ", pill("paused")] : null),
    h("td.num", null, `${num(t.attempts)} / ${num(t.max_attempts)}`),
    h("td", null, run ? pill(run.status) : h("span.muted", null, "–")),
    h("td", null, holder(run)),
    leftCell(run),
    h("td.nowrap", null, time(t.created_at)),
    h("td.nowrap", null, time(t.updated_at))
  );
}

async function renderTask(ctx, taskId) {
  const head = h("div.head", null, h("h1", null, taskId));
  const info = h("dl.kv");
  const body = h("tbody");
  const table = h(
    "table.list",
    { id: "runs" },
    h("thead", null, h("tr", null, ...["attempt", "run", "status", "holder", "queued", "claimed", "ended", "took", "lease left", "failure"].map((c) => h("th", null, c)))),
    body
  );
  ctx.root.append(head, h("section.panel", null, info), h("section.panel.flush", null, h("h2", null, "Runs"), table));
  const tick = countdowns(ctx);
  const pager = new Pager({
    fetch: (token) => consoleApi.taskRuns(taskId, { page_token: token }),
    items: (page) => {
      const t = page.task || {};
      fill(head, h("h1", null, `${t.identifier || ""} ${t.title || ""}`), pill(t.status), t.paused ? pill("paused") : null, h("span.sub", null, h("a", { href: "#/queue" }, "← queue")));
      info.replaceChildren(
        ...[
          ["priority", pill(t.priority)],
          ["attempts", `${num(t.attempts)} of ${num(t.max_attempts)}`],
          ["created", time(t.created_at)],
          ["updated", time(t.updated_at)],
          ["id", code(t.id || taskId)],
        ].flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v)])
      );
      return page.runs || [];
    },
    row: runRow,
    body,
    after: table,
    empty: () => empty("No runs yet", "A draft task has no run until it is queued."),
    fail: ctx.fail,
    onPage: tick,
  });
  ctx.onDispose(() => pager.stop());
  const refresh = throttle(() => pager.reset(true), 1000);
  ctx.onDispose(refresh.cancel);
  ctx.onDispose(ctx.live.subscribe((batch) => batch.some((e) => CHANGES.test(e.type)) && refresh()));
  await pager.reset();
}

function runRow(r) {
  const took = r.ended_at && (r.started_at || r.claimed_at) ? new Date(r.ended_at) - new Date(r.started_at || r.claimed_at) : null;
  return h(
    "tr",
    { "data-nav": true },
    h("td.num", null, num(r.attempt)),
    idCell(r.id),
    h("td", null, pill(r.status)),
    h("td", null, holder(r)),
    h("td.nowrap", null, time(r.queued_at)),
    h("td.nowrap", null, time(r.claimed_at)),
    h("td.nowrap", null, time(r.ended_at)),
    h("td.num", null, took === null ? "–" : duration(took)),
    leftCell(r),
    h("td", { title: r.error || "" }, r.failure_kind ? pill(r.failure_kind) : "", r.error ? h("span.error", null, ` ${r.error}`) : "")
  );
}
