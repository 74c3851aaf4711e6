// The console's shell: hash routing (one URL per view, linkable, never a
// server route), the live indicator, the API key, and the keyboard.

import { ApiError, apiKey, auth, consoleApi, setApiKey } from "./api.js";
import { code, h } from "./dom.js";
import { LogFollower } from "./live.js";
import * as channels from "./views/channels.js";
import * as overview from "./views/overview.js";
import * as queue from "./views/queue.js";
import * as rules from "./views/rules.js";
import * as sessions from "./views/sessions.js";
import * as timeline from "./views/timeline.js";

const live = new LogFollower();
const root = document.getElementById("view");
let current = null; // {dispose: [fn]}

function route(parts) {
  const [head, ...rest] = parts;
  switch (head || "overview") {
    case "overview":
      return [overview, "overview"];
    case "sessions":
      return [sessions, "sessions"];
    case "timeline":
      return rest.length === 2 ? [timeline, "sessions"] : null;
    case "queue":
      return [queue, "queue"];
    case "channels":
      return [channels, "channels"];
    case "rules":
      return [rules, "rules"];
    default:
      return null;
  }
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, query: new URLSearchParams(query) };
}

function dispose() {
  if (!current) return;
  for (const fn of current.dispose) {
    try {
      fn();
    } catch (err) {
      console.error(err);
    }
  }
  current = null;
}

export function render() {
  dispose();
  const { parts, query } = parseHash();
  const found = route(parts);
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", !!found && a.dataset.view === found[1]);
  }
  root.replaceChildren();
  const ctx = {
    root,
    parts: parts.slice(1),
    query,
    live,
    state: { dispose: [] },
    onDispose(fn) {
      this.state.dispose.push(fn);
    },
    // Keep the URL in step with a view's filters without re-rendering it.
    setQuery(params) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
      const path = location.hash.replace(/^#/, "").split("?")[0] || "/";
      const text = q.toString();
      history.replaceState(null, "", `#${path}${text ? "?" + text : ""}`);
    },
    // A view left behind may still be loading: only the current one may show its error.
    fail: (err) => current === ctx.state && showError(err),
    setWorkspace,
  };
  current = ctx.state;
  if (!found) {
    root.append(h("div.notice", null, h("h1", null, "Nothing here"), h("p", null, "This address is not a view of the console. ", h("a", { href: "#/" }, "Go to the overview"), ".")));
    document.title = "agentplane console";
    return;
  }
  const [view] = found;
  document.title = `${view.title ? view.title(ctx) : found[1]} · agentplane`;
  Promise.resolve(view.render(ctx)).catch(ctx.fail);
}

function setWorkspace(name) {
  const el = document.getElementById("workspace");
  el.textContent = name ? `workspace: ${name}` : "";
}

// ------------------------------------------------------------- errors and the key

function showError(err) {
  if (err instanceof ApiError && err.status === 401) return keyNotice(err.message);
  console.error(err);
  const status = err instanceof ApiError && err.status ? ` (HTTP ${err.status})` : "";
  const hint =
    err instanceof ApiError && err.status === 403
      ? h("p", null, "Your API key may not read this: give the console a key with the scopes ", code("read:events"), ", ", code("read:sessions"), ", ", code("read:tasks"), " and ", code("channels"), " (or ", code("admin"), ").")
      : err instanceof ApiError && err.status === 0
        ? h("p", null, "The console will show it again once the server answers. ", h("button", { type: "button", onclick: render }, "Retry"))
        : null;
  root.replaceChildren(
    h("div.notice", null, h("h1", null, "This view could not be loaded"), h("p.error", null, `${err.message || err}${status}`), hint)
  );
}

function keyNotice(reason) {
  dispose();
  const input = h("input", { type: "password", name: "key", placeholder: "ap_…", autocomplete: "off", "aria-label": "API key", value: apiKey() });
  const form = h(
    "form",
    {
      onsubmit: (ev) => {
        ev.preventDefault();
        setApiKey(input.value);
        render();
      },
    },
    input,
    h("button.primary", { type: "submit" }, "Use this key")
  );
  root.replaceChildren(
    h(
      "div.notice.panel",
      { id: "key-notice" },
      h("h1", null, apiKey() ? "This API key was refused" : "This server needs an API key"),
      reason ? h("p.error", null, reason) : null,
      h("p", null, "With API keys on (", code("AGENTPLANE_AUTH=keys"), "), the console shows what a key may read, in the key's workspace only. Paste one: it is kept for this browser tab's session only and sent with every request as ", code("X-API-Key"), "."),
      form,
      h("p", null, "No key yet? On the server's machine:"),
      h("pre", null, "agentplane keys create --name console --workspace default \\\n  --scopes read:events,read:sessions,read:tasks,channels"),
      apiKey() ? h("button", { type: "button", onclick: () => { setApiKey(""); render(); } }, "Forget the key") : null
    )
  );
  input.focus();
}

auth.addEventListener("needed", () => {
  if (!document.getElementById("key-notice")) keyNotice("");
});
auth.addEventListener("changed", () => {
  live.start();
  probe();
});

document.getElementById("key-button").addEventListener("click", () => keyNotice(""));

// ------------------------------------------------------------- the live indicator

const indicator = document.getElementById("live");
const LABELS = { connecting: "connecting", live: "live", reconnecting: "reconnecting…", "key-needed": "key needed" };
live.addEventListener("state", () => {
  indicator.dataset.state = live.state;
  indicator.textContent = LABELS[live.state] || live.state;
  indicator.title = live.lastError || "The event log stream";
});

// ------------------------------------------------------------- the keyboard

let pendingG = 0;
const GO = { o: "#/", s: "#/sessions", q: "#/queue", c: "#/channels", r: "#/rules" };

function rows() {
  return [...root.querySelectorAll("[data-nav]")];
}

function select(step) {
  const all = rows();
  if (!all.length) return;
  const at = all.findIndex((r) => r.classList.contains("sel"));
  const next = all[Math.max(0, Math.min(all.length - 1, at < 0 ? 0 : at + step))];
  for (const r of all) r.classList.remove("sel");
  next.classList.add("sel");
  next.scrollIntoView({ block: "nearest" });
}

function open() {
  const sel = root.querySelector("[data-nav].sel");
  if (!sel) return;
  if (sel.dataset.href) location.hash = sel.dataset.href;
  else sel.click();
}

document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const t = ev.target;
  const typing = t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement;
  if (typing) {
    if (ev.key === "Escape") t.blur();
    return;
  }
  if (pendingG && performance.now() - pendingG < 1500 && GO[ev.key]) {
    pendingG = 0;
    location.hash = GO[ev.key];
    ev.preventDefault();
    return;
  }
  pendingG = 0;
  switch (ev.key) {
    case "g":
      pendingG = performance.now();
      break;
    case "j":
    case "ArrowDown":
      select(1);
      break;
    case "k":
    case "ArrowUp":
      select(-1);
      break;
    case "Enter":
      open();
      break;
    case "/": {
      const search = root.querySelector("[data-search]");
      if (search) search.focus();
      else location.hash = "#/sessions?focus=search";
      break;
    }
    case "?":
      document.getElementById("help").showModal();
      break;
    default:
      return;
  }
  ev.preventDefault();
});
document.getElementById("help-button").addEventListener("click", () => document.getElementById("help").showModal());

// ------------------------------------------------------------- start

// Which workspace the key reads (and whether it may read at all).
function probe() {
  consoleApi.overview({ recent_limit: 1 }).then((o) => setWorkspace(o.workspace), () => setWorkspace(""));
}

window.addEventListener("hashchange", render);
window.agentplaneConsole = { live }; // for the curious, in the devtools console
live.start();
probe();
render();
