/**
 * The TypeScript client against a real agentplane server over gRPC: sessions
 * and events written and read back, the event log streamed from a cursor and
 * followed live, and errors as ConnectError codes.
 */
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { after, before, describe, test } from "node:test";

import { create, fromJson, toJson, type DescService, type JsonValue } from "@bufbuild/protobuf";
import { ListValueSchema } from "@bufbuild/protobuf/wkt";

import * as facade from "../src/index.js";
import {
  Code,
  ConnectError,
  createAgentplaneClient,
  EventSchema,
  type AgentplaneClient,
  type Event,
  type LogEntry,
  type WatchLogResponse,
} from "../src/index.js";
import { startServer, type Server } from "./server.js";

const CALL_TIMEOUT_MS = 10_000;

let server: Server;
let client: AgentplaneClient;

before(async () => {
  server = await startServer();
  client = createAgentplaneClient({
    baseUrl: server.baseUrl,
    apiKey: server.apiKey,
    defaultTimeoutMs: CALL_TIMEOUT_MS,
  });
});

after(async () => {
  client?.close();
  await server?.stop();
});

function message(sessionId: string, second: number, role: string, text: string): Event {
  return create(EventSchema, {
    eventType: "message",
    sessionId,
    sessionName: "TypeScript",
    timestamp: `2026-01-01T00:00:${String(second).padStart(2, "0")}Z`,
    role,
    content: fromJson(ListValueSchema, [{ type: "text", text }]),
  });
}

async function rejection(call: Promise<unknown>): Promise<ConnectError> {
  const error = await call.then(
    () => assert.fail("the call succeeded"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof ConnectError, `not a ConnectError: ${String(error)}`);
  return error;
}

function isService(value: unknown): value is DescService {
  return (value as Partial<DescService> | undefined)?.kind === "service";
}

async function collect(stream: AsyncIterable<WatchLogResponse>): Promise<LogEntry[]> {
  const entries: LogEntry[] = [];
  for await (const response of stream) {
    if (response.kind.case === "entry") entries.push(response.kind.value);
  }
  return entries;
}

describe("sessions and events", () => {
  const sessionId = "ts-session";

  test("creates a session and reads it back", async () => {
    const created = await client.sessionService.createSession({
      sessionId,
      sessionName: "TypeScript",
      agentName: "node",
    });
    assert.equal(created.ok, true);
    assert.equal(created.session?.sessionId, sessionId);
    assert.equal(created.session?.status, "running");
    assert.equal(created.session?.agentName, "node");
    assert.equal(created.session?.projectDir, undefined); // optional and unset: absent, not ""
    assert.ok(!Number.isNaN(Date.parse(created.session?.createdAt ?? "")), created.session?.createdAt);

    const got = await client.sessionService.getSession({ sessionId });
    assert.deepEqual(got.session, created.session);
    const listed = await client.sessionService.listSessions({});
    assert.deepEqual(
      listed.sessions.map((s) => s.sessionId),
      [sessionId],
    );
  });

  test("sends events and reads them back in order", async () => {
    const texts = ["first", "second", "third"];
    for (const [i, text] of texts.entries()) {
      await client.eventService.addSessionEvent({
        sessionId,
        event: message(sessionId, i, i % 2 ? "assistant" : "user", text),
      });
    }
    const { events } = await client.eventService.listSessionEvents({ sessionId });
    assert.deepEqual(
      events.map((e) => [e.eventType, e.role, e.timestamp, e.content && toJson(ListValueSchema, e.content)]),
      texts.map((text, i) => [
        "message",
        i % 2 ? "assistant" : "user",
        `2026-01-01T00:00:0${i}Z`,
        [{ type: "text", text }],
      ]),
    );
    // ids are positions in the event log: increasing (int64 arrives as bigint)
    const ids = events.map((e) => e.id);
    const increasing = ids.every((id, i) => typeof id === "bigint" && (i === 0 || id > (ids[i - 1] ?? 0n)));
    assert.ok(increasing, String(ids));
  });

  test("a session_stop finishes the session and its result is the last assistant text", async () => {
    await client.eventService.addSessionEvent({
      sessionId,
      event: {
        eventType: "session_stop",
        sessionId,
        sessionName: "TypeScript",
        timestamp: "2026-01-01T00:01:00Z",
        reason: "completed",
        exitCode: 0,
      },
    });
    assert.equal((await client.sessionService.getSessionStatus({ sessionId })).status, "finished");
    assert.equal((await client.sessionService.getSessionResult({ sessionId })).result, "second");
  });

  test("streams the session's log from a cursor, without gaps or duplicates", async () => {
    const all = await collect(client.logService.watchLog({ sessionId, stopAtEnd: true }));
    assert.deepEqual(
      all.map((e) => [e.type, e.data?.["event_type"] ?? null]),
      [
        ["session.created", null],
        ["runtime.event", "message"],
        ["runtime.event", "message"],
        ["runtime.event", "message"],
        ["session.updated", null],
        ["runtime.event", "session_stop"],
      ],
    );
    assert.ok(all.every((e) => e.sessionId === sessionId && e.workspace === "default"));
    const { events } = await client.eventService.listSessionEvents({ sessionId });
    assert.deepEqual(
      events.map((e) => e.id),
      all.filter((e) => e.type === "runtime.event").map((e) => e.seq),
    );

    // Resuming after the third entry yields exactly the rest.
    const cursor = all[2]?.seq ?? assert.fail("no third entry");
    const rest = await collect(client.logService.watchLog({ sessionId, afterSeq: cursor, stopAtEnd: true }));
    assert.deepEqual(
      rest.map((e) => e.seq),
      all.slice(3).map((e) => e.seq),
    );
  });

  test("follows new entries as they are committed, until aborted", async () => {
    // Leaving a Connect stream's loop does not end the call: its signal does.
    const abort = new AbortController();
    const stream = client.logService
      .watchLog({ sessionId, afterSeq: -1n }, { signal: abort.signal, timeoutMs: CALL_TIMEOUT_MS })
      [Symbol.asyncIterator]();
    try {
      // From the end: the stream opens with a heartbeat carrying the position.
      const opened = await stream.next();
      assert.equal(opened.done, false);
      assert.equal(opened.value.kind.case, "heartbeat");
      const cursor: bigint = opened.value.kind.value.cursor;
      assert.ok(cursor > 0n);

      await client.eventService.addSessionEvent({ sessionId, event: message(sessionId, 30, "user", "live") });
      const next = await stream.next();
      assert.equal(next.done, false);
      assert.equal(next.value.kind.case, "entry");
      const entry: LogEntry = next.value.kind.value;
      assert.equal(entry.type, "runtime.event");
      assert.ok(entry.seq > cursor);
      assert.deepEqual(entry.data?.["content"], [{ type: "text", text: "live" }] satisfies JsonValue);

      abort.abort();
      assert.equal((await rejection(stream.next())).code, Code.Canceled);
    } finally {
      abort.abort();
    }
  });
});

describe("errors", () => {
  test("an unknown session is NOT_FOUND (code 5), and nothing is written", async () => {
    const error = await rejection(client.sessionService.getSession({ sessionId: "missing" }));
    assert.equal(error.code, Code.NotFound);
    assert.equal(error.code, 5);
    assert.equal(error.rawMessage, "Session not found");

    const adding = await rejection(
      client.eventService.addSessionEvent({
        sessionId: "missing",
        event: message("missing", 0, "user", "lost"),
      }),
    );
    assert.equal(adding.code, Code.NotFound);
    const status = await client.sessionService.getSessionStatus({ sessionId: "missing" });
    assert.equal(status.status, "not_existent");
    assert.deepEqual((await client.eventService.listEvents({ sessionId: "missing" })).events, []);
  });

  test("an event for another session is INVALID_ARGUMENT, and nothing is written", async () => {
    await client.sessionService.createSession({ sessionId: "ts-other", sessionName: "Other" });
    const error = await rejection(
      client.eventService.addSessionEvent({
        sessionId: "ts-other",
        event: message("ts-session", 0, "user", "misrouted"),
      }),
    );
    assert.equal(error.code, Code.InvalidArgument);
    assert.deepEqual((await client.eventService.listSessionEvents({ sessionId: "ts-other" })).events, []);
  });

  test("an existing session id is ALREADY_EXISTS", async () => {
    const again = client.sessionService.createSession({ sessionId: "ts-other", sessionName: "Again" });
    assert.equal((await rejection(again)).code, Code.AlreadyExists);
    const { session } = await client.sessionService.getSession({ sessionId: "ts-other" });
    assert.equal(session?.sessionName, "Other");
  });

  test("without a valid API key the server answers UNAUTHENTICATED", async () => {
    for (const apiKey of [undefined, "ap_not-a-key"]) {
      const anonymous = createAgentplaneClient({ baseUrl: server.baseUrl, apiKey });
      try {
        const error = await rejection(anonymous.sessionService.listSessions({}));
        assert.equal(error.code, Code.Unauthenticated);
      } finally {
        anonymous.close();
      }
    }
  });
});

describe("idempotency keys", () => {
  test("every write carries a fresh key, reads none", async () => {
    const sent: [string, string | null][] = [];
    const recording = createAgentplaneClient({
      baseUrl: server.baseUrl,
      apiKey: server.apiKey,
      interceptors: [
        (next) => (req) => {
          sent.push([req.method.name, req.header.get(facade.IDEMPOTENCY_KEY)]);
          return next(req);
        },
      ],
    });
    try {
      await recording.sessionService.createSession({ sessionId: "ts-keyed-1", sessionName: "One" });
      await recording.sessionService.createSession({ sessionId: "ts-keyed-2", sessionName: "Two" });
      await recording.sessionService.listSessions({});
    } finally {
      recording.close();
    }
    assert.deepEqual(
      sent.map(([name]) => name),
      ["CreateSession", "CreateSession", "ListSessions"],
    );
    const [first, second, read] = sent.map(([, key]) => key);
    assert.match(first ?? "", /^[0-9a-f-]{36}$/);
    assert.notEqual(first, second);
    assert.equal(read, null);
  });

  test("a write sent again with its key returns the first answer and writes nothing", async () => {
    const headers = { [facade.IDEMPOTENCY_KEY]: "ts-retry-1" };
    const request = { sessionId: "ts-retried", sessionName: "Retried" };
    const first = await client.sessionService.createSession(request, { headers });
    const again = await client.sessionService.createSession(request, { headers });
    assert.deepEqual(again, first); // not ALREADY_EXISTS: the first answer, replayed
    const other = client.sessionService.createSession({ ...request, sessionName: "Other" }, { headers });
    assert.equal((await rejection(other)).code, Code.AlreadyExists); // the key was used for another request
  });

  test("reads, streams and API key calls are not writes", () => {
    assert.equal(facade.isWrite(facade.SessionService.method.createSession), true);
    assert.equal(facade.isWrite(facade.SessionService.method.listSessions), false);
    assert.equal(facade.isWrite(facade.LogService.method.watchLog), false);
    assert.equal(facade.isWrite(facade.ApiKeyService.method.createApiKey), false);
  });
});

describe("the facade", () => {
  // Read from the generated files, so that a proto file or service missing from the facade fails here.
  const genDir = new URL("../src/gen/agentplane/v1/", import.meta.url);

  test("exports every generated agentplane.v1 module and has a client for every service", async () => {
    const files = (await readdir(genDir)).filter((f) => f.endsWith("_pb.js"));
    assert.ok(files.includes("runtime_pb.js"), String(files));
    const clients = client as unknown as Record<string, Record<string, unknown>>;
    for (const file of files) {
      const generated = (await import(new URL(file, genDir).href)) as Record<string, unknown>;
      for (const [name, value] of Object.entries(generated)) {
        assert.equal((facade as Record<string, unknown>)[name], value, `${file}: ${name} is not exported`);
        if (!isService(value)) continue;
        const service = clients[name.charAt(0).toLowerCase() + name.slice(1)];
        assert.ok(service, `${file}: no client for ${name}`);
        for (const method of value.methods) {
          assert.equal(typeof service[method.localName], "function", `${name}.${method.localName}`);
        }
      }
    }
  });
});
