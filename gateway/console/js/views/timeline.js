// A session's or task's timeline: events in log order in the tracer's lanes,
// grouped into turns with their rule verdicts and why; tool calls with their
// inputs and outputs (redacted when stored), durations, tokens and cost; the
// tree of parents and children. New events are appended as the log reports them.

import { consoleApi } from "../api.js";
import { code, cost, duration, empty, h, json, kindBadge, num, pill, shortId, throttle, time, timelineHref, tokens } from "../dom.js";
import { about } from "../live.js";
import { Pager } from "./pager.js";

export const LANES = ["user", "exploration", "planning", "implementation", "questions", "todos", "background", "coordination", "telemetry", "rule"];

export const title = (ctx) => `Timeline ${shortId(ctx.parts[1])}`;

export async function render(ctx) {
  const [kind, id] = ctx.parts;
  const header = h("div.head");
  const info = h("dl.kv", { id: "item-info" });
  const tree = h("ul.tree", { id: "tree" });
  const events = h("div", { id: "events" });
  const list = h("div.panel.flush", null, h("h2", null, "Events"), events);
  ctx.root.append(
    header,
    h(
      "section.grid.two",
      null,
      list,
      h(
        "div",
        null,
        h("div.panel", null, h("h2", null, "About"), info),
        h("div.panel", null, h("h2", null, "Tree"), tree),
        h("div.panel", null, h("h2", null, "Lanes"), h("div.lanes-legend", null, ...LANES.map((l) => laneColor(h("span", null, l), l))))
      )
    )
  );

  const turns = new Map(); // id -> turn
  const drawnTurns = new Map(); // id -> header element
  const sessions = new Set([id]);
  let lastTurn = null;
  let followToken = "";

  const showItem = (page) => {
    const item = page.item || {};
    header.replaceChildren(
      h("h1", null, item.title || id),
      kindBadge(item.kind || kind),
      pill(item.status),
      h("span.sub.mono", null, id)
    );
    info.replaceChildren(
      ...[
        ["status", pill(item.status)],
        ["runtime", item.runtime || "–"],
        ["workspace", item.workspace || "–"],
        ["created", time(item.created_at)],
        ["updated", time(item.updated_at)],
        ["events", Number(item.event_count) ? num(item.event_count) : "–"],
        ["tokens in / out", tokens(item.input_tokens, item.output_tokens)],
        ["cost", cost(item.cost_usd)],
      ].flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v)])
    );
    drawTree(tree, page.tree || [], kind, id);
    for (const n of page.tree || []) sessions.add(n.id);
  };

  const eventRows = (page) => {
    for (const t of page.turns || []) {
      turns.set(t.id, t);
      const drawn = drawnTurns.get(t.id);
      if (drawn) drawn.replaceWith(drawTurn(t, drawnTurns));
    }
    const rows = [];
    for (const e of page.events || []) {
      if (e.session_id) sessions.add(e.session_id);
      if (e.turn_id && e.turn_id !== lastTurn && !drawnTurns.has(e.turn_id) && turns.has(e.turn_id)) {
        rows.push(drawTurn(turns.get(e.turn_id), drawnTurns));
      }
      lastTurn = e.turn_id || lastTurn;
      rows.push(eventRow(e));
    }
    return rows;
  };

  let first = true;
  const pager = new Pager({
    fetch: (token) => consoleApi.timeline(kind, id, { page_token: token }),
    items: (page) => {
      if (first) showItem(page);
      first = false;
      followToken = page.follow_token || followToken;
      return eventRows(page);
    },
    row: (el) => el,
    body: events,
    after: events,
    empty: () => empty("No events yet", "Events recorded for it appear here as they arrive."),
    fail: ctx.fail,
  });
  ctx.onDispose(() => pager.stop());

  // The log says something about this item: read what came after the last page read, once the
  // last page is read. `wanted` survives a follow in flight or a page still loading, so an entry
  // that arrives meanwhile is read by the next follow, never dropped.
  let wanted = false;
  let following = false;
  const follow = throttle(async () => {
    if (following || pager.loading || pager.token || !followToken) return;
    wanted = false;
    following = true;
    let failed = false;
    try {
      const page = await consoleApi.timeline(kind, id, { page_token: followToken });
      showItem(page);
      followToken = page.follow_token || followToken;
      const rows = eventRows(page);
      if (rows.length) {
        events.append(...rows.map((r) => (r.classList.add("fresh"), r)));
        pager.emptyBox.hidden = true;
      }
      if (page.next_page_token) wanted = true;
    } catch (err) {
      wanted = failed = true; // the next log entry (or page read) tries again
    } finally {
      following = false;
      if (wanted && !failed) follow();
    }
  }, 500);
  pager.onPage = () => wanted && follow();
  ctx.onDispose(follow.cancel);
  ctx.onDispose(
    ctx.live.subscribe((batch) => {
      if (batch.some((e) => (e.session_id && sessions.has(e.session_id)) || about(e).id === id)) {
        wanted = true;
        follow();
      }
    })
  );
  await pager.reset();
}

function laneColor(el, lane) {
  el.style.setProperty("--c", `var(--lane-${LANES.includes(lane) ? lane : "background"})`);
  return el;
}

function drawTree(el, nodes, kind, id) {
  if (!nodes.length) {
    el.replaceChildren(h("li.muted", null, "No parent or children."));
    return;
  }
  const depth = new Map();
  const items = [];
  for (const n of nodes) {
    const parent = n.parent_id ? depth.get(n.parent_id) : undefined;
    const d = parent === undefined ? 0 : parent + 1;
    depth.set(n.id, d);
    const self = n.relation === "self" || (n.id === id && n.kind === kind);
    const indent = h("span.indent");
    indent.style.width = `${d * 14}px`;
    const linkable = n.kind !== "agent";
    items.push(
      h(
        `li${self ? ".self" : ""}`,
        { title: `${n.kind} ${n.id}` },
        indent,
        d ? "└ " : "",
        linkable && !self ? h("a", { href: timelineHref(n.kind, n.id) }, n.title || shortId(n.id)) : n.title || shortId(n.id),
        " ",
        pill(n.status),
        " ",
        h("span.muted", null, n.kind.replace("_", " "))
      )
    );
  }
  el.replaceChildren(...items);
}

function drawTurn(t, drawn) {
  const took = t.ended_at ? new Date(t.ended_at) - new Date(t.started_at) : null;
  const el = h(
    "div.turn",
    { dataset: { turn: t.id } },
    h("strong", null, `Turn ${t.index}`),
    t.verdict ? pill(t.verdict) : h("span.muted", null, t.status === "open" ? "open" : "no rule applied"),
    h("span.asked", { title: t.asked_text }, t.asked_text || h("span.muted", null, "(no request text)")),
    took ? h("span.muted", { title: "from the request to the answer" }, duration(took)) : null,
    (t.verdicts || []).length
      ? h(
          "div.verdicts",
          null,
          ...t.verdicts.map((v) =>
            h(
              "span.verdict",
              { title: JSON.stringify(v.why || {}, null, 1) },
              h("a", { href: `#/rules/${encodeURIComponent(v.rule_id)}` }, v.rule_name || shortId(v.rule_id)),
              " ",
              pill(v.status),
              " ",
              h("span.why", null, why(v.why))
            )
          )
        )
      : null
  );
  drawn.set(t.id, el);
  return el;
}

// A verdict's reason in a few words.
export function why(w) {
  if (!w || typeof w !== "object") return "";
  const parts = [];
  const phrase = w.matchedPhrase || w.matched_phrase || w.phrase;
  if (phrase) parts.push(`asked "${phrase}"`);
  const expected = w.expectedPattern || w.expected_pattern || w.expected || w.pattern;
  if (expected) parts.push(`expected ${typeof expected === "string" ? expected : JSON.stringify(expected)}`);
  const matched = w.matchedToolCalls || w.matched || w.matchedEvents;
  if (Array.isArray(matched)) parts.push(`${matched.length} matching call${matched.length === 1 ? "" : "s"}`);
  const reason = w.reason || w.message;
  if (reason) parts.push(String(reason));
  return parts.join(" · ") || Object.keys(w).slice(0, 3).join(", ");
}

function eventRow(e) {
  const lanes = h("span.lanes", { title: `lane: ${e.lane || "–"}` });
  for (const l of LANES) lanes.append(laneColor(h(`i${l === e.lane ? ".on" : ""}`), l));
  const failed = /fail|error/i.test(e.status || "") || /fail|error/i.test(e.kind || "");
  const stats = [];
  if (Number(e.duration_ms)) stats.push(h("span", { title: "duration" }, duration(e.duration_ms)));
  if (Number(e.input_tokens) || Number(e.output_tokens)) stats.push(h("span", { title: "tokens in / out" }, tokens(e.input_tokens, e.output_tokens)));
  if (Number(e.cost_usd)) stats.push(h("span", { title: "cost" }, cost(e.cost_usd)));
  if (e.status) stats.push(pill(e.status));
  const row = h(
    `div.ev${failed ? ".failed" : ""}`,
    { "data-nav": true, dataset: { seq: e.seq, lane: e.lane || "" }, tabindex: -1 },
    h("span.t", null, time(e.occurred_at)),
    lanes,
    h("span.what", { title: e.title }, e.tool_name ? h("span.tool", null, e.tool_name) : null, e.title || e.kind, h("span.kindname", null, e.kind)),
    h("span.stats", null, ...stats)
  );
  row.addEventListener("click", (ev) => {
    if (ev.target.closest(".detail")) return;
    const open = row.querySelector(".detail");
    if (open) return open.remove();
    row.append(
      h(
        "div.detail",
        null,
        e.body ? h("p.body-text", null, e.body) : null,
        h("div.muted", null, "#", String(e.seq), " · ", code(e.id), e.session_id ? [" · session ", code(e.session_id)] : null),
        e.detail && Object.keys(e.detail).length ? json(e.detail) : null
      )
    );
  });
  return row;
}
