// Channels: the list, and one channel's members with their read positions
// and its messages, new ones appended as the log delivers them.

import { consoleApi } from "../api.js";
import { code, fill, empty, h, idCell, num, pill, throttle, time } from "../dom.js";
import { Pager } from "./pager.js";

export const title = (ctx) => (ctx.parts[0] ? `#${ctx.parts[0]}` : "Channels");

export function render(ctx) {
  return ctx.parts[0] ? renderChannel(ctx, ctx.parts[0]) : renderList(ctx);
}

async function renderList(ctx) {
  const body = h("tbody");
  const table = h(
    "table.list",
    { id: "channels" },
    h("thead", null, h("tr", null, ...["channel", "purpose", "task / run", "members", "messages", "last activity", "created"].map((c) => h("th", null, c)))),
    body
  );
  const panel = h("div.panel.flush", null, table);
  ctx.root.append(h("div.head", null, h("h1", null, "Channels"), h("span.sub", null, "most recently active first")), panel);
  const pager = new Pager({
    fetch: (token) => consoleApi.channels({ page_token: token }),
    items: (page) => page.channels || [],
    row: (c) => {
      const link = `#/channels/${encodeURIComponent(c.id)}`;
      return h(
        "tr",
        { "data-nav": true, "data-href": link, dataset: { id: c.id }, onclick: (ev) => ev.target.closest("a") || (location.hash = link) },
        h("td", null, h("a", { href: link }, `#${c.display_name || c.id}`)),
        h("td", null, h("span.kind", null, c.purpose === "task_run_coordination" ? "run coordination" : "network")),
        h("td.id", { title: c.run_id || "" }, c.task_id ? h("a", { href: `#/queue/${encodeURIComponent(c.task_id)}` }, c.task_id) : "–"),
        h("td.num", null, num(c.member_count)),
        h("td.num", null, num(c.message_count)),
        h("td.nowrap", null, time(c.last_activity_at)),
        h("td.nowrap", null, time(c.created_at))
      );
    },
    body,
    after: table,
    empty: () =>
      empty(
        "No channels yet",
        h("span", null, "Operators create them with ", code("POST /v1/channels"), "; each queued task run gets its coordination channel ", code("run-<run id>"), ".")
      ),
    fail: ctx.fail,
  });
  ctx.onDispose(() => pager.stop());
  const refresh = throttle(() => pager.reset(true), 1000);
  ctx.onDispose(refresh.cancel);
  ctx.onDispose(ctx.live.subscribe((batch) => batch.some((e) => e.type.startsWith("channel.")) && refresh()));
  await pager.reset();
}

async function renderChannel(ctx, id) {
  const head = h("div.head", null, h("h1", null, `#${id}`));
  const members = h("tbody");
  const older = h("button", { type: "button" }, "Older messages");
  const olderBox = h("div.more", { hidden: true }, older);
  const list = h("ul.msgs", { id: "messages" });
  const none = empty("No messages yet", h("span", null, "Agents post with ", code(`POST /api/agent/channels/${id}/send`), "; operators with ", code(`POST /v1/channels/${id}/messages`), ". They appear here live."));
  ctx.root.append(
    head,
    h(
      "section.grid.two",
      null,
      h("div.panel.flush", null, h("h2", null, "Messages"), olderBox, list, none),
      h(
        "div.panel.flush",
        null,
        h("h2", null, "Members and read positions"),
        h("table.list", { id: "members" }, h("thead", null, h("tr", null, ...["session", "agent", "read up to", "unread", "last seen"].map((c) => h("th", null, c)))), members)
      )
    )
  );

  const showChannel = async () => {
    const got = await consoleApi.channel(id);
    const c = got.channel || {};
    fill(head, 
      h("h1", null, `#${c.display_name || id}`),
      h("span.kind", null, c.purpose === "task_run_coordination" ? "run coordination" : "network"),
      h("span.sub", null, `${num(c.message_count)} messages · ${num(c.member_count)} members`),
      c.task_id ? h("a", { href: `#/queue/${encodeURIComponent(c.task_id)}` }, `task ${c.task_id}`) : null
    );
    members.replaceChildren(
      ...(got.members || []).map((m) =>
        h(
          "tr",
          { "data-nav": true, dataset: { session: m.session_id } },
          idCell(m.session_id),
          h("td", null, m.agent_name || "–"),
          h("td.num", null, Number(m.read_seq) ? `#${m.read_seq}` : "–"),
          h("td.num", null, Number(m.unread) ? h("strong", null, num(m.unread)) : "0"),
          h("td.nowrap", null, time(m.last_seen_at))
        )
      )
    );
    if (!(got.members || []).length) members.append(h("tr", null, h("td.muted", { colspan: 5 }, "No member yet: a session joins by posting or reading.")));
  };

  let newest = 0;
  let olderToken = "";
  const add = (messages, where, fresh) => {
    const rows = [];
    for (const m of messages) {
      const seq = Number(m.seq);
      if (where === "end") {
        if (seq <= newest) continue;
        newest = seq;
      }
      rows.push(messageRow(m, fresh));
    }
    if (where === "end") list.append(...rows);
    else list.prepend(...rows);
    none.hidden = list.childElementCount > 0;
  };
  older.addEventListener("click", async () => {
    const page = await consoleApi.messages(id, { page_token: olderToken }).catch(ctx.fail);
    if (!page) return;
    olderToken = page.next_page_token || "";
    olderBox.hidden = !olderToken;
    add(page.messages || [], "start", false);
  });

  const members_ = throttle(() => showChannel().catch(() => {}), 1000);
  ctx.onDispose(members_.cancel);
  ctx.onDispose(
    ctx.live.subscribe((batch) => {
      const mine = batch.filter((e) => e.type === "channel.message" && e.data && e.data.channel_id === id);
      add(mine.map(fromEntry), "end", true);
      if (mine.length || batch.some((e) => e.type === "channel.read" && e.data && e.data.channel_id === id)) members_();
    })
  );

  await showChannel();
  const page = await consoleApi.messages(id);
  olderToken = page.next_page_token || "";
  olderBox.hidden = !olderToken;
  add(page.messages || [], "end", false);
}

// A `channel.message` log entry as the messages route shows it.
function fromEntry(e) {
  const d = e.data;
  return {
    seq: e.seq,
    id: d.message_id,
    from_session_id: d.from_session_id,
    to_session_id: d.to_session_id || "",
    reply_to: d.reply_to_message_id || "",
    body: d.body,
    metadata: d.metadata,
    sent_at: d.timestamp || e.recorded_at,
  };
}

function messageRow(m, fresh) {
  const meta = m.metadata && typeof m.metadata === "object" ? m.metadata : {};
  const body = m.body;
  const text = body && typeof body === "object" && typeof body.text === "string" ? body.text : typeof body === "string" ? body : JSON.stringify(body);
  return h(
    `li${fresh ? ".fresh" : ""}`,
    { "data-nav": true, dataset: { seq: m.seq }, title: `#${m.seq} ${m.id}` },
    h("span.muted", null, time(m.sent_at)),
    h("span.from", { title: m.from_session_id }, m.from_session_id || "operator", m.to_session_id ? h("span.muted", null, ` → ${m.to_session_id}`) : null),
    h("span.text", null, meta.message_kind ? [pill(meta.message_kind), " "] : null, text)
  );
}
