/**
 * A real `agentplane serve --grpc-only` process for the tests: a temporary
 * SQLite file, API keys required (an admin key made with `agentplane keys
 * create`), and a port the server picks itself and logs once it is ready.
 */
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const READY = /gRPC server ready on (\S+:\d+)/;
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

export interface Server {
  baseUrl: string;
  apiKey: string;
  stop(): Promise<void>;
}

/** The CLI from AGENTPLANE_BIN, else the repository's venv (dist/test -> repository root). */
function agentplaneBin(): string {
  const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
  return process.env.AGENTPLANE_BIN ?? join(repo, ".venv", "bin", "agentplane");
}

export async function startServer(): Promise<Server> {
  const bin = agentplaneBin();
  const dir = await mkdtemp(join(tmpdir(), "agentplane-ts-"));
  const removeDir = (): Promise<void> => rm(dir, { recursive: true, force: true });
  try {
    const databaseUrl = `sqlite:///${join(dir, "agentplane.db")}`;
    const keys = ["keys", "--database-url", databaseUrl, "create", "--name", "ts", "--scopes", "admin"];
    const created = await promisify(execFile)(bin, keys);
    const apiKey = created.stdout.trim().split("\n").at(-1) ?? ""; // the key is the last line
    const serve = ["serve", "--grpc-only", "--grpc-port", "0", "--database-url", databaseUrl];
    const { address, stop } = await spawnReady(bin, serve);
    return {
      baseUrl: `http://${address}`,
      apiKey,
      async stop() {
        await stop();
        await removeDir();
      },
    };
  } catch (error) {
    await removeDir();
    throw error;
  }
}

/** Starts the server and resolves with the address it logs once ready. */
async function spawnReady(bin: string, args: string[]): Promise<{ address: string; stop(): Promise<void> }> {
  const proc = spawn(bin, args, {
    env: { ...process.env, AGENTPLANE_AUTH: "keys" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((done) => proc.once("exit", done));
  // Never outlive the test process, however it ends.
  const killOnExit = (): void => void proc.kill("SIGKILL");
  process.once("exit", killOnExit);
  void exited.then(() => process.off("exit", killOnExit));
  let output = "";
  let timer: NodeJS.Timeout | undefined;
  try {
    const address = await new Promise<string>((ready, fail) => {
      const late = (): void => fail(new Error(`not ready in ${START_TIMEOUT_MS} ms:\n${output}`));
      timer = setTimeout(late, START_TIMEOUT_MS);
      const read = (chunk: Buffer): void => {
        output += chunk.toString();
        const match = READY.exec(output);
        if (match?.[1]) ready(match[1]);
      };
      proc.stdout.on("data", read);
      proc.stderr.on("data", read);
      void exited.then((code) => fail(new Error(`exited (${code}) before it was ready:\n${output}`)));
    });
    return {
      address,
      async stop() {
        const killer = setTimeout(() => proc.kill("SIGKILL"), STOP_TIMEOUT_MS);
        proc.kill("SIGTERM");
        await exited;
        clearTimeout(killer);
      },
    };
  } catch (error) {
    proc.kill("SIGKILL");
    await exited;
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
