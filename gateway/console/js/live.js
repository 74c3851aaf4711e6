// Follows the event log (GET /v1/log:watch, NDJSON) with fetch() streaming, so
// the API key header goes with it (a WebSocket cannot carry one).
//
// It keeps the `seq` of the last entry (or heartbeat cursor) it received and
// resumes from it after any drop (a restart, a network error, the server's
// slow-consumer or shutdown end), so nothing is missed and nothing arrives
// twice. Entries are handed to the views in batches at most every 250 ms:
// 1,000 entries a second cost the page four small updates, not a thousand.

import { auth, errorMessage, headers } from "./api.js";

const FLUSH_MS = 250;
const BACKOFF_MS = [250, 500, 1000, 2000, 3000];

export class LogFollower extends EventTarget {
  constructor() {
    super();
    this.state = "connecting";
    this.cursor = null; // null: start at the log's current end
    this.received = 0;
    this.subscribers = new Set();
    this.pending = [];
    this.timer = null;
    this.lastFlush = 0;
    this.controller = null;
    this.running = false;
    this.lastError = "";
  }

  // fn(entries) gets each batch, oldest first; returns the unsubscribe function.
  subscribe(fn) {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  // Follow from `afterSeq` (a log position; omitted: from now on).
  start(afterSeq = null) {
    this.stop();
    this.cursor = afterSeq;
    this.running = true;
    this.loop();
  }

  stop() {
    this.running = false;
    if (this.controller) this.controller.abort();
    this.controller = null;
  }

  setState(state, detail = "") {
    if (state === this.state && !detail) return;
    this.state = state;
    this.lastError = detail;
    this.dispatchEvent(new CustomEvent("state", { detail: state }));
  }

  async loop() {
    let attempt = 0;
    const me = (this.controller = new AbortController());
    while (this.running && this.controller === me) {
      let resumeNow = false;
      try {
        const after = this.cursor ?? -1;
        const resp = await fetch(`/v1/log:watch?after_seq=${after}`, {
          headers: headers(),
          signal: me.signal,
          cache: "no-store",
        });
        if (resp.status === 401 || resp.status === 403) {
          const body = await resp.json().catch(() => null);
          this.setState("key-needed", errorMessage(body, resp.status));
          if (resp.status === 401) auth.dispatchEvent(new CustomEvent("needed"));
          return; // a new key restarts the follower
        }
        if (!resp.ok || !resp.body) throw new Error(`HTTP ${resp.status}`);
        this.setState("live");
        attempt = 0;
        resumeNow = await this.read(resp.body);
      } catch (err) {
        if (me.signal.aborted) return;
      }
      if (!this.running || this.controller !== me) return;
      this.setState("reconnecting");
      if (!resumeNow) await sleep(BACKOFF_MS[Math.min(attempt++, BACKOFF_MS.length - 1)]);
    }
  }

  // Reads the stream until it ends; true when the server asked us to resume at once.
  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let rest = "";
    let resume = false;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const lines = (rest + value).split("\n");
        rest = lines.pop();
        for (const line of lines) if (line && this.line(line)) resume = true;
      }
    } finally {
      reader.cancel().catch(() => {});
    }
    return resume;
  }

  // One NDJSON line; true for an error line that says where to resume.
  line(text) {
    const msg = JSON.parse(text);
    const result = msg.result;
    if (result && result.entry) {
      const entry = result.entry;
      const seq = Number(entry.seq);
      if (this.cursor !== null && seq <= this.cursor) return false; // never twice
      this.cursor = seq;
      this.received++;
      this.pending.push(entry);
      this.schedule();
    } else if (result && result.heartbeat) {
      const at = Number(result.heartbeat.cursor);
      if (this.cursor === null || at > this.cursor) this.cursor = at;
    } else if (msg.error) {
      // SLOW_CONSUMER or SERVER_SHUTTING_DOWN: everything up to resume_after_seq was delivered.
      for (const d of msg.error.details || []) {
        const at = d.metadata && d.metadata.resume_after_seq;
        if (at !== undefined && this.cursor === null) this.cursor = Number(at);
      }
      this.lastError = msg.error.message || "";
      return true;
    }
    return false;
  }

  schedule() {
    if (this.timer) return;
    const wait = Math.max(0, this.lastFlush + FLUSH_MS - performance.now());
    this.timer = setTimeout(() => this.flush(), wait);
  }

  flush() {
    this.timer = null;
    this.lastFlush = performance.now();
    const batch = this.pending;
    this.pending = [];
    if (!batch.length) return;
    for (const fn of this.subscribers) {
      try {
        fn(batch);
      } catch (err) {
        console.error("live update failed", err);
      }
    }
    window.dispatchEvent(new CustomEvent("agentplane:log", { detail: batch }));
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Which thing a log entry is about, for the views' live updates and the activity feed.
export function about(entry) {
  const d = entry.data || {};
  const type = entry.type || "";
  const thing = d.session || d.task || d.execution || d.agent || d.tool_call || d.channel || d.rule || d.turn || d.run || d.message;
  let kind = "log";
  let id = entry.session_id || "";
  let name = "";
  if (type.startsWith("session.") && d.session) {
    kind = "runtime_session";
    id = d.session.session_id;
    name = d.session.session_name;
  } else if (type.startsWith("tracer.task") && d.task) {
    kind = "tracer_task";
    id = d.task.id;
    name = d.task.displayTitle || d.task.title;
  } else if (type.startsWith("tracer.session") && d.session) {
    kind = "tracer_task";
    id = d.session.taskId;
  } else if (type === "tracer.event.logged" || type === "tracer.event.updated") {
    kind = "tracer_task";
    id = d.taskId;
    name = d.title;
  } else if (type.startsWith("tracer.turn") && d.turn) {
    kind = "tracer_task";
    id = d.turn.taskId;
    name = d.turn.askedText;
  } else if (type.startsWith("execution.") && d.execution) {
    kind = "execution";
    id = d.execution.id;
    name = d.execution.name;
  } else if (type.startsWith("agent.") && d.agent) {
    kind = "execution";
    id = d.agent.execution_id;
    name = d.agent.prompt;
  } else if (type.startsWith("tool_call.") && d.tool_call) {
    kind = "execution";
    id = d.tool_call.execution_id;
    name = d.tool_call.tool_name;
  } else if ((type.startsWith("task.") || type.startsWith("task_run.")) && d.task) {
    kind = "agh_task";
    id = d.task.id;
    name = d.task.identifier ? `${d.task.identifier} ${d.task.title || ""}` : d.task.title;
  } else if (type.startsWith("channel.")) {
    kind = "channel";
    id = (d.channel && d.channel.id) || (d.message && d.message.channel_id) || d.channel_id || "";
    name = id;
  } else if (type.startsWith("runtime.") || type.startsWith("trenchcoat.")) {
    kind = "runtime_session";
    name = d.session_name || d.event_type || "";
  } else if (thing && typeof thing === "object") {
    id = thing.id || id;
    name = thing.name || thing.title || "";
  }
  return { kind, id: id || "", name: name || "" };
}
