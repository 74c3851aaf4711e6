/**
 * agentplane's TypeScript client: a typed client for every gRPC service,
 * generated from the same protos as the server (src/gen, `make gen`), over
 * Connect's gRPC transport (HTTP/2).
 */
import { randomUUID } from "node:crypto";

import { getOption, hasOption, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import {
  createGrpcTransport,
  Http2SessionManager,
  type GrpcTransportOptions,
} from "@connectrpc/connect-node";

import * as v1 from "./gen/agentplane/v1/index.js";
import { required_scope } from "./gen/agentplane/v1/options_pb.js";
import { http } from "./gen/google/api/annotations_pb.js";

export * from "./gen/agentplane/v1/index.js";
export { Code, ConnectError } from "@connectrpc/connect";

type V1 = typeof v1;
type ServiceName = { [K in keyof V1]: V1[K] extends DescService ? K : never }[keyof V1];

/** A client per service, named after it: `SessionService` is `sessionService`. */
export type AgentplaneServices = { readonly [K in ServiceName as Uncapitalize<K>]: Client<V1[K]> };

export type AgentplaneClient = AgentplaneServices & {
  /** The transport the clients share: pass it to Connect's `createClient` for anything else. */
  readonly transport: Transport;
  /** Closes the connection and every open stream (unless `sessionManager` was given). */
  close(): void;
};

export type AgentplaneClientOptions = GrpcTransportOptions & {
  /**
   * An API key (`agentplane keys create`), sent as `x-api-key` metadata on
   * every call; needed when the server runs with AGENTPLANE_AUTH=keys.
   */
  apiKey?: string | undefined;
};

/** Every agentplane.v1 service descriptor, by the name of its client. */
export const agentplaneServices: { readonly [name: string]: DescService } = Object.fromEntries(
  Object.values(v1 as Record<string, unknown>)
    .filter((value): value is DescService => (value as Partial<DescService>).kind === "service")
    .map((service) => [service.name.charAt(0).toLowerCase() + service.name.slice(1), service]),
);

/** Sends the API key the way the server reads it (service/app/auth.py). */
export function apiKeyInterceptor(apiKey: string): Interceptor {
  return (next) => (req) => {
    req.header.set("x-api-key", apiKey);
    return next(req);
  };
}

/** The metadata a write's idempotency key travels in. */
export const IDEMPOTENCY_KEY = "idempotency-key";

/**
 * Whether the server treats `method` as a write (service/app/idempotency.py):
 * unary, not an API key RPC (`admin`), and bound to a verb other than GET,
 * or unbound with a `write:` scope.
 */
export function isWrite(method: DescMethod): boolean {
  if (method.methodKind !== "unary") return false;
  const scope = getOption(method, required_scope);
  if (scope === "admin") return false;
  if (hasOption(method, http)) return getOption(method, http).pattern.case !== "get";
  return scope.startsWith("write:");
}

/**
 * Sends a fresh idempotency key with every write, so that the server applies
 * it once however often it arrives. A key the caller set already (in the call
 * options' `headers`, to reuse it across its own retries) is kept.
 */
export function idempotencyKeyInterceptor(): Interceptor {
  return (next) => (req) => {
    if (isWrite(req.method) && !req.header.has(IDEMPOTENCY_KEY)) req.header.set(IDEMPOTENCY_KEY, randomUUID());
    return next(req);
  };
}

/**
 * Clients for every agentplane service over one HTTP/2 connection to the gRPC
 * port, for example `createAgentplaneClient({ baseUrl: "http://127.0.0.1:50051" })`.
 */
export function createAgentplaneClient(options: AgentplaneClientOptions): AgentplaneClient {
  const { apiKey, interceptors = [], ...transportOptions } = options;
  // Made here rather than by the transport so that close() can end it; a
  // session manager the caller passes in stays the caller's to close.
  const ownSessionManager =
    options.sessionManager === undefined
      ? new Http2SessionManager(options.baseUrl, transportOptions, transportOptions.nodeOptions)
      : undefined;
  const transport = createGrpcTransport({
    ...transportOptions,
    sessionManager: options.sessionManager ?? ownSessionManager,
    interceptors: [
      idempotencyKeyInterceptor(),
      ...(apiKey === undefined ? [] : [apiKeyInterceptor(apiKey)]),
      ...interceptors,
    ],
  });
  const clients = Object.fromEntries(
    Object.entries(agentplaneServices).map(([name, service]) => [name, createClient(service, transport)]),
  ) as AgentplaneServices;
  return { ...clients, transport, close: () => ownSessionManager?.abort() };
}
