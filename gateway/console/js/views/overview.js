// Overview: what runs now, events per minute, today's errors, rule failures,
// tokens and cost, and the newest activity as it happens.

import { consoleApi } from "../api.js";
import { code, compact, cost, empty, h, num, throttle, time, timelineHref } from "../dom.js";
import { about } from "../live.js";

const FEED = 50;
const TIMELINE_KINDS = new Set(["runtime_session", "tracer_task", "tracer_session", "execution", "agh_task"]);

export const title = () => "Overview";

export async function render(ctx) {
  const cards = h("div.grid.cards", { id: "running" });
  const bars = h("div.bars", { id: "epm", role: "img" });
  const total = h("span", { id: "epm-total" });
  const axis = h("div.axis", null, h("span", null, "60 min ago"), total, h("span", null, "now"));
  const asOf = h("span.sub", { id: "as-of" });
  const today = h("dl.kv", { id: "today" });
  const feed = h("ul.feed", { id: "activity" });
  const feedEmpty = empty(
    "No activity yet",
    "Everything agents record appears here the moment it is committed.",
    h("span", null, "Point a runtime at this server, e.g. ", code("agentplane hooks install --runtime claude-code"), ".")
  );
  ctx.root.append(
    h("div.head", null, h("h1", null, "Overview"), asOf),
    h("section", null, cards),
    h(
      "section.grid.two",
      null,
      h("div.panel.chart", null, h("h2", null, "Events per minute"), bars, axis),
      h("div.panel", null, h("h2", null, "Today"), today)
    ),
    h("section.panel.flush", null, h("h2", null, "Newest activity"), feed, feedEmpty)
  );

  let buckets = [];
  let newest = 0;

  const load = async () => {
    const o = await consoleApi.overview({ recent_limit: FEED });
    ctx.setWorkspace(o.workspace);
    drawRunning(cards, o.running || {});
    buckets = (o.events_per_minute || []).map((b) => ({ start: new Date(b.start).getTime(), count: Number(b.count) }));
    drawBars(bars, total, buckets);
    drawToday(today, o.today || {});
    asOf.textContent = `workspace ${o.workspace} · log at #${num(o.head_seq)}`;
    const recent = (o.recent || []).slice().reverse(); // oldest first, as the log delivers them
    feed.replaceChildren();
    newest = 0;
    addActivity(recent.map((a) => ({ seq: Number(a.seq), type: a.type, kind: a.kind, id: a.id, name: a.name, time: a.time })), false);
  };

  const addActivity = (items, fresh) => {
    const fragment = document.createDocumentFragment();
    for (const a of items) {
      if (a.seq <= newest) continue;
      newest = a.seq;
      fragment.prepend(activityRow(a, fresh));
    }
    feed.prepend(fragment);
    while (feed.childElementCount > FEED) feed.lastElementChild.remove();
    feedEmpty.hidden = feed.childElementCount > 0;
  };

  // Counts come back from the server now and then; the feed and the chart move with every batch.
  const refresh = throttle(() => load().catch(() => {}), 3000);
  ctx.onDispose(refresh.cancel);
  ctx.onDispose(
    ctx.live.subscribe((batch) => {
      const items = batch.slice(-FEED).map((e) => ({ seq: Number(e.seq), type: e.type, ...about(e), time: e.recorded_at }));
      addActivity(items, true);
      if (buckets.length) {
        const minute = Math.floor(Date.now() / 60_000) * 60_000;
        while (buckets[buckets.length - 1].start < minute) {
          buckets.push({ start: buckets[buckets.length - 1].start + 60_000, count: 0 });
          buckets.shift();
        }
        buckets[buckets.length - 1].count += batch.length;
        drawBars(bars, total, buckets);
      }
      refresh();
    })
  );
  await load();
}

function card(label, value, title, alert) {
  return h(`div.panel.card${alert ? ".alert" : ""}`, { title }, h("div.value", null, value), h("div.label", null, label));
}

function drawRunning(el, r) {
  el.replaceChildren(
    card("runtime sessions running", num(r.runtime_sessions), "Agent Runtime sessions (seed 004) whose status is running"),
    card("tracer tasks running", num(r.tracer_tasks), "Agent Tracer tasks (seed 000) whose status is running"),
    card("executions running", num(r.executions), "Executions (seed 001) running or pending"),
    card("leased runs", num(r.leased_runs), "Task runs an agent holds a lease on"),
    card("queued runs", num(r.queued_runs), "Task runs waiting to be claimed"),
    card("open streams", num(r.open_streams), "Live streams open on this server process")
  );
}

function drawBars(el, totalEl, buckets) {
  const max = Math.max(1, ...buckets.map((b) => b.count));
  el.replaceChildren(
    ...buckets.map((b) => {
      const bar = h("div", { title: `${new Date(b.start).toLocaleTimeString()}: ${num(b.count)} events` });
      bar.style.height = `${Math.max(1, (b.count / max) * 100)}%`;
      return bar;
    })
  );
  el.setAttribute("aria-label", `events per minute over the last hour, at most ${num(max)}`);
  const total = buckets.reduce((s, b) => s + b.count, 0);
  totalEl.textContent = `${num(total)} in the last hour · peak ${num(max)}/min`;
}

function drawToday(el, t) {
  const byKind = (t.errors_by_kind || []).filter((c) => Number(c.count) > 0);
  const rows = [
    ["errors", h("span", { class: Number(t.errors) ? "error" : "" }, num(t.errors))],
    ...byKind.map((c) => [h("span", null, "  ", code(c.name)), num(c.count)]),
    ["rule failures", h("span", { class: Number(t.rule_failures) ? "error" : "" }, num(t.rule_failures))],
    ["rules unverifiable", num(t.rule_unverifiable)],
    ["rules passed", num(t.rule_passes)],
    ["tokens in / out", `${compact(t.input_tokens)} / ${compact(t.output_tokens)}`],
    ["cache read / created", `${compact(t.cache_read_tokens)} / ${compact(t.cache_creation_tokens)}`],
    ["cost", cost(t.cost_usd)],
  ];
  el.replaceChildren(...rows.flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
  el.title = t.usage_source ? `tokens and cost from: ${t.usage_source}; since ${new Date(t.since).toLocaleString()}` : "";
}

function activityRow(a, fresh) {
  const link = TIMELINE_KINDS.has(a.kind) && a.id ? timelineHref(a.kind, a.id) : a.kind === "channel" && a.id ? `#/channels/${encodeURIComponent(a.id)}` : null;
  const named = a.name && a.name !== a.type;
  const label = named ? a.name : a.id || a.type;
  return h(
    `li${fresh ? ".fresh" : ""}`,
    { dataset: { seq: a.seq } },
    h("span.t", null, time(a.time)),
    h("span.type", { title: `#${a.seq} ${a.type}` }, a.type),
    h("span.what", null, link ? h("a", { href: link }, label) : label, named && a.id ? h("span.muted.mono", null, `  ${a.id}`) : null)
  );
}
