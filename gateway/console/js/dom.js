// Small DOM and formatting helpers shared by the views.

// h("td.num", {title: "x"}, child, "text", [more]) -> an element; attributes
// starting with "on" are listeners; null/false children are skipped.
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name || "div");
  if (classes.length) el.className = classes.join(" ");
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "class") el.className += (el.className ? " " : "") + v;
      else if (k === "dataset") Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? "" : v);
    }
  }
  append(el, children);
  return el;
}

// Replace an element's children (null and false skipped, as in h()).
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

// Local time in the viewer's zone: "14:03:07" today, else "Dec 4, 14:03".
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const dayFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "long" });

export function parseTime(value) {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function time(value) {
  const d = parseTime(value);
  if (!d) return h("span.muted", null, "–");
  const today = new Date();
  const text = d.toDateString() === today.toDateString() ? timeFmt.format(d) : dayFmt.format(d);
  return h("time", { datetime: d.toISOString(), title: fullFmt.format(d) }, text);
}

export function ago(value, now = Date.now()) {
  const d = parseTime(value);
  if (!d) return "";
  return duration(Math.max(0, now - d.getTime())) + " ago";
}

export function duration(ms) {
  ms = Number(ms) || 0;
  const neg = ms < 0;
  ms = Math.abs(ms);
  let text;
  if (ms < 1000) text = `${Math.round(ms)} ms`;
  else if (ms < 60_000) text = `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  else if (ms < 3_600_000) text = `${Math.floor(ms / 60_000)}m ${Math.floor((ms % 60_000) / 1000)}s`;
  else if (ms < 86_400_000) text = `${Math.floor(ms / 3_600_000)}h ${Math.floor((ms % 3_600_000) / 60_000)}m`;
  else text = `${Math.floor(ms / 86_400_000)}d ${Math.floor((ms % 86_400_000) / 3_600_000)}h`;
  return neg ? `-${text}` : text;
}

const intFmt = new Intl.NumberFormat();
const compactFmt = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

export function num(n) {
  return intFmt.format(Number(n) || 0);
}

export function compact(n) {
  n = Number(n) || 0;
  return n < 10_000 ? intFmt.format(n) : compactFmt.format(n);
}

export function cost(usd) {
  usd = Number(usd) || 0;
  if (!usd) return "–";
  return usd < 0.01 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;
}

export function tokens(input, output) {
  const i = Number(input) || 0;
  const o = Number(output) || 0;
  if (!i && !o) return "–";
  return `${compact(i)} / ${compact(o)}`;
}

const GOOD = new Set(["completed", "verified", "finished", "done", "succeeded", "closed", "success"]);
const RUNNING = new Set(["running", "in_progress", "claimed", "starting", "active", "open", "leased", "pending"]);
const WARN = new Set(["warn", "high", "waiting", "queued", "ready", "paused", "unverifiable", "draft", "released", "stale"]);
const BAD = new Set(["block", "urgent", "failed", "error", "errored", "contradicted", "expired", "cancelled", "canceled", "timeout", "lease_expired"]);

export function pill(status) {
  const s = String(status || "").toLowerCase();
  const cls = GOOD.has(s) ? "ok" : RUNNING.has(s) ? "run" : BAD.has(s) ? "bad" : WARN.has(s) ? "warn" : "";
  return h(`span.pill${cls ? "." + cls : ""}`, null, status || "–");
}

export const KIND_LABELS = {
  runtime_session: "runtime session",
  tracer_task: "tracer task",
  tracer_session: "tracer session",
  execution: "execution",
  agh_task: "queue task",
  agent: "agent",
};

export function kindBadge(kind) {
  return h("span.kind", null, KIND_LABELS[kind] || kind || "–");
}

export function shortId(id) {
  id = String(id || "");
  return id.length > 14 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id;
}

export function idCell(id) {
  return h("td.id", { title: id }, shortId(id));
}

export function json(value) {
  return h("pre.json", null, JSON.stringify(value, null, 2));
}

// An empty state that says why it is empty and what to do.
export function empty(title, ...lines) {
  return h("div.empty", null, h("strong", null, title), ...lines.map((l) => h("div", null, l)));
}

export function code(text) {
  return h("code", null, text);
}

export function href(...parts) {
  return "#/" + parts.map((p) => encodeURIComponent(p)).join("/");
}

export function timelineHref(kind, id) {
  return href("timeline", kind, id);
}

// Call fn at most once per `ms`, the last call winning (for refreshes driven by the log).
export function throttle(fn, ms) {
  let timer = null;
  let last = 0;
  const run = () => {
    timer = null;
    last = performance.now();
    fn();
  };
  const call = () => {
    if (timer) return;
    timer = setTimeout(run, Math.max(0, last + ms - performance.now()));
  };
  call.cancel = () => {
    clearTimeout(timer);
    timer = null;
  };
  return call;
}
