// Rules: the rule set with pass / fail / unverifiable counts, and one rule's
// verdict history with why each verdict was given.

import { consoleApi } from "../api.js";
import { code, fill, empty, h, json, num, pill, shortId, throttle, time, timelineHref } from "../dom.js";
import { Pager } from "./pager.js";
import { why } from "./timeline.js";

const CHANGES = /^(tracer\.rule|tracer\.verdict|tracer\.turn\.closed|rule)/;

export const title = (ctx) => (ctx.parts[0] ? "Rule" : "Rules");

export function render(ctx) {
  return ctx.parts[0] ? renderRule(ctx, ctx.parts[0]) : renderList(ctx);
}

function counts(r) {
  const v = Number(r.verified) || 0;
  const c = Number(r.contradicted) || 0;
  const u = Number(r.unverifiable) || 0;
  const total = v + c + u;
  const bar = h("div.bar3", { title: `${v} verified, ${c} contradicted, ${u} unverifiable` });
  for (const [cls, n] of [["v", v], ["c", c], ["u", u]]) {
    const part = h(`div.${cls}`);
    part.style.width = total ? `${(n / total) * 100}%` : "0";
    bar.append(part);
  }
  return bar;
}

function expectation(r) {
  const parts = [];
  if (r.trigger_phrases && r.trigger_phrases.length) parts.push(h("span", null, "when ", r.trigger_on || "asked", " ", r.trigger_phrases.map((p) => `"${p}"`).join(", ")));
  else parts.push(h("span.muted", null, "every turn"));
  if (r.expected_action || r.expected_pattern) parts.push(h("span", null, " → ", r.expected_action || "", r.expected_pattern ? [" ", code(r.expected_pattern)] : null));
  return parts;
}

async function renderList(ctx) {
  const body = h("tbody");
  const table = h(
    "table.list",
    { id: "rules" },
    h("thead", null, h("tr", null, ...["rule", "scope", "severity", "source", "trigger → expectation"].map((c) => h("th", null, c)), h("th.num", null, "verified"), h("th.num", null, "failed"), h("th.num", null, "unverifiable"), h("th", null, ""), h("th", null, "created"))),
    body
  );
  const panel = h("div.panel.flush", null, table);
  ctx.root.append(h("div.head", null, h("h1", null, "Rules"), h("span.sub", null, "verification rules, newest first; deleted rules keep their verdicts")), panel);
  const pager = new Pager({
    fetch: (token) => consoleApi.rules({ page_token: token }),
    items: (page) => page.rules || [],
    row: (r) => {
      const link = `#/rules/${encodeURIComponent(r.id)}`;
      return h(
        `tr${r.deleted_at ? ".deleted" : ""}`,
        { "data-nav": true, "data-href": link, dataset: { id: r.id }, onclick: (ev) => ev.target.closest("a") || (location.hash = link) },
        h("td.title", { title: r.rationale || r.name }, h("a", { href: link }, r.name), r.deleted_at ? h("span.muted", null, " (deleted)") : null),
        h("td", null, r.scope === "task" && r.task_id ? h("a", { href: timelineHref("tracer_task", r.task_id), title: r.task_id }, "task") : r.scope),
        h("td", null, pill(r.severity)),
        h("td", null, r.source),
        h("td.title", null, ...expectation(r)),
        h("td.num", null, num(r.verified)),
        h("td.num", null, Number(r.contradicted) ? h("strong.error", null, num(r.contradicted)) : "0"),
        h("td.num", null, num(r.unverifiable)),
        h("td", null, counts(r)),
        h("td.nowrap", null, time(r.created_at))
      );
    },
    body,
    after: table,
    empty: () =>
      empty(
        "No rules yet",
        h("span", null, "A rule says what a turn must show, e.g. \"when I ask to run the tests, a test command runs\": ", code("POST /api/v1/rules"), " (see the README's Verification rules).")
      ),
    fail: ctx.fail,
  });
  ctx.onDispose(() => pager.stop());
  const refresh = throttle(() => pager.reset(true), 2000);
  ctx.onDispose(refresh.cancel);
  ctx.onDispose(ctx.live.subscribe((batch) => batch.some((e) => CHANGES.test(e.type)) && refresh()));
  await pager.reset();
}

async function renderRule(ctx, ruleId) {
  const status = ctx.query.get("status") || "";
  const head = h("div.head", null, h("h1", null, "Rule"));
  const info = h("dl.kv");
  const filter = h(
    "div.chips",
    null,
    ...["", "verified", "contradicted", "unverifiable"].map((s) =>
      h(`a.chip${s === status ? ".on" : ""}`, { href: `#/rules/${encodeURIComponent(ruleId)}${s ? `?status=${s}` : ""}` }, s || "all")
    )
  );
  const body = h("tbody");
  const table = h(
    "table.list",
    { id: "verdicts" },
    h("thead", null, h("tr", null, ...["when", "verdict", "why", "task", "turn", "session"].map((c) => h("th", null, c)))),
    body
  );
  ctx.root.append(head, h("section.panel", null, info), h("section.panel.flush", null, h("div.filters.pad", null, h("h2", null, "Verdicts"), filter), table));
  const pager = new Pager({
    fetch: (token) => consoleApi.verdicts(ruleId, { status, page_token: token }),
    items: (page) => {
      const r = page.rule || {};
      fill(head, h("h1", null, r.name || ruleId), pill(r.severity), r.deleted_at ? pill("deleted") : null, h("span.sub", null, h("a", { href: "#/rules" }, "← rules")));
      info.replaceChildren(
        ...[
          ["trigger → expectation", h("span", null, ...expectation(r))],
          ["scope", r.scope === "task" ? h("span", null, "task ", h("a", { href: timelineHref("tracer_task", r.task_id) }, shortId(r.task_id))) : r.scope],
          ["source", r.source],
          ["why it exists", r.rationale || h("span.muted", null, "–")],
          ["verdicts", h("span", null, `${num(r.verified)} verified · ${num(r.contradicted)} contradicted · ${num(r.unverifiable)} unverifiable`)],
          ["created", time(r.created_at)],
          ["id", code(r.id || ruleId)],
        ].flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v)])
      );
      return page.verdicts || [];
    },
    row: (v) => {
      const row = h(
        "tr",
        { "data-nav": true, dataset: { status: v.status } },
        h("td.nowrap", null, time(v.evaluated_at)),
        h("td", null, pill(v.status)),
        h("td.title", { title: JSON.stringify(v.why || {}) }, why(v.why)),
        h("td.id", null, v.task_id ? h("a", { href: timelineHref("tracer_task", v.task_id), title: v.task_id }, shortId(v.task_id)) : "–"),
        h("td.id", { title: v.turn_id }, shortId(v.turn_id)),
        h("td.id", { title: v.session_id }, shortId(v.session_id))
      );
      row.addEventListener("click", (ev) => {
        if (ev.target.closest("a")) return;
        const next = row.nextElementSibling;
        if (next && next.classList.contains("why-row")) return next.remove();
        row.after(h("tr.why-row", null, h("td", { colspan: 6 }, json(v.why || {}))));
      });
      return row;
    },
    body,
    after: table,
    empty: () => empty(status ? `No ${status} verdict` : "No verdicts yet", "A verdict is given when a turn closes whose request or answer triggers the rule."),
    fail: ctx.fail,
  });
  ctx.onDispose(() => pager.stop());
  await pager.reset();
}
