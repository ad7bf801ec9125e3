import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { SessiondClient, SessiondError } from "@sessiond/client";

export {
  startSessiond,
  startRedis,
  freePort,
  packageRoot,
  findSessiondBin,
} from "../scripts/sessiond-process.mjs";
export type { SessiondProcess, RedisProcess } from "../scripts/sessiond-process.mjs";

/** A client of a started sessiond, with its admin key. */
export function clientOf(sd: { url: string; adminKey: string }, timeoutMs = 5000): SessiondClient {
  return new SessiondClient({ baseUrl: sd.url, apiKey: sd.adminKey, timeoutMs });
}

/** Asserts that `p` rejects with a SessiondError of `code`, and returns it. */
export async function rejectsWith(
  p: Promise<unknown>,
  code: string,
  status?: number,
): Promise<SessiondError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof SessiondError, `expected a SessiondError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    if (status !== undefined) assert.equal(e.status, status);
    return e;
  }
  assert.fail(`expected a SessiondError ${code}, but the call succeeded`);
}

export interface FakeServer {
  url: string;
  /** Requests received so far. */
  requests: { method: string; url: string; headers: IncomingMessage["headers"]; body: string }[];
  close(): Promise<void>;
}

/**
 * A tiny local HTTP server answering with `handler` (which gets the whole
 * request body), standing in for sessiond or for anything else that
 * answers on its address.
 */
export async function fakeServer(
  handler: (req: IncomingMessage, res: ServerResponse, body: string) => void,
): Promise<FakeServer> {
  const requests: FakeServer["requests"] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((res) => {
        server.closeAllConnections();
        server.close(() => res());
      }),
  };
}

/** Answers JSON. */
export function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** A counter of `sessiond_requests_total{operation, outcome}` from /metrics. */
export async function requestCount(baseUrl: string, operation: string, outcome: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = text
    .split("\n")
    .find((l) => l.startsWith(`sessiond_requests_total{operation="${operation}",outcome="${outcome}"}`));
  return line ? Number(line.split(" ").pop()) : 0;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
