// Starts a real sessiond for the tests, the benchmark and `npm run gen`:
// the binary from SESSIOND_BIN, else ../../target/release/sessiond, else
// ../../target/debug/sessiond (relative to clients/typescript), on a free
// loopback port (127.0.0.1:0; sessiond logs the address it got) with a
// temporary data directory. Also starts throwaway redis-servers.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
/** clients/typescript */
export const packageRoot = resolve(here, "..");
const repoRoot = resolve(packageRoot, "..", "..");

/** The sessiond binary to run; throws with what to do when there is none. */
export function findSessiondBin() {
  const fromEnv = process.env.SESSIOND_BIN;
  if (fromEnv) {
    const p = resolve(packageRoot, fromEnv);
    if (!existsSync(p)) {
      throw new Error(`SESSIOND_BIN=${fromEnv}: no such file (${p})`);
    }
    return p;
  }
  for (const profile of ["release", "debug"]) {
    const p = join(repoRoot, "target", profile, "sessiond");
    if (existsSync(p)) return p;
  }
  throw new Error(
    "no sessiond binary: set SESSIOND_BIN to one, or build it first " +
      "(`cargo build --release -p sessiond` in the repository root gives " +
      `${join(repoRoot, "target", "release", "sessiond")})`,
  );
}

const ANSI = /\x1b\[[0-9;]*m/g;

/**
 * Starts `sessiond serve` and waits until it listens.
 * @param {{env?: Record<string, string>, startTimeoutMs?: number}} [opts]
 */
export async function startSessiond(opts = {}) {
  const bin = findSessiondBin();
  const dataDir = await mkdtemp(join(tmpdir(), "sessiond-ts-"));
  // sessiond reads every SESSIOND_* variable as configuration and refuses
  // unknown ones (SESSIOND_BIN, SESSIOND_URL), so none is inherited.
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("SESSIOND_") && k !== "RUST_LOG"),
  );
  const env = {
    ...inherited,
    SESSIOND_LISTEN: "127.0.0.1:0",
    SESSIOND_DATA_DIR: dataDir,
    // The start is seen in the log ("listening on"), an info line.
    SESSIOND_LOG_LEVEL: "info",
    NO_COLOR: "1",
    ...opts.env,
  };
  const proc = spawn(bin, ["serve"], { env, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  let exited = false;
  const exit = new Promise((res) => {
    proc.on("exit", (code, signal) => {
      exited = true;
      res({ code, signal });
    });
  });
  const killOnExit = () => {
    if (!exited) proc.kill("SIGKILL");
  };
  process.on("exit", killOnExit);

  const addr = await new Promise((res, rej) => {
    const timer = setTimeout(() => {
      rej(new Error(`sessiond did not listen within ${opts.startTimeoutMs ?? 15000} ms:\n${log}`));
    }, opts.startTimeoutMs ?? 15000);
    proc.stderr.setEncoding("utf8");
    proc.stderr.on("data", (chunk) => {
      log += chunk.replace(ANSI, "");
      if (log.length > 200_000) log = log.slice(-100_000);
      const m = /listening on (\S+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        res(m[1]);
      }
    });
    proc.on("error", (e) => {
      clearTimeout(timer);
      rej(new Error(`cannot run ${bin}: ${e.message}`));
    });
    proc.on("exit", (code, signal) => {
      clearTimeout(timer);
      rej(new Error(`sessiond exited (code ${code}, signal ${signal}) before listening:\n${log}`));
    });
  });
  const adminKey = (await readFile(join(dataDir, "admin.key"), "utf8")).trim();

  return {
    url: `http://${addr}`,
    adminKey,
    dataDir,
    pid: proc.pid,
    /** The log so far. */
    log: () => log,
    /** SIGTERM, wait (then SIGKILL after 5 s), remove the data directory. */
    async stop() {
      if (!exited) {
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
        await exit;
        clearTimeout(t);
      }
      process.off("exit", killOnExit);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A free loopback TCP port (for programs that cannot take port 0). */
export function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.on("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => res(typeof addr === "object" && addr ? addr.port : 0));
    });
  });
}

/**
 * A throwaway redis-server on a free loopback port (never the shared 6379):
 * no persistence. `kill()` stops it (SIGKILL), as a store outage.
 */
export async function startRedis() {
  const port = await freePort();
  const proc = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let exited = false;
  const exit = new Promise((res) =>
    proc.on("exit", () => {
      exited = true;
      res(undefined);
    }),
  );
  const killOnExit = () => {
    if (!exited) proc.kill("SIGKILL");
  };
  process.on("exit", killOnExit);
  let log = "";
  await new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`redis-server did not start:\n${log}`)), 10000);
    proc.on("error", (e) => {
      clearTimeout(timer);
      rej(new Error(`cannot run redis-server (install redis-server): ${e.message}`));
    });
    proc.stdout.setEncoding("utf8");
    proc.stdout.on("data", (c) => {
      log += c;
      if (/Ready to accept connections/i.test(log)) {
        clearTimeout(timer);
        res(undefined);
      }
    });
    proc.on("exit", () => {
      clearTimeout(timer);
      rej(new Error(`redis-server exited before it was ready:\n${log}`));
    });
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async kill() {
      if (!exited) proc.kill("SIGKILL");
      await exit;
      process.off("exit", killOnExit);
    },
  };
}
