#!/usr/bin/env node
// What the client adds to a validate call: N sequential validates through
// SessiondClient and N through a raw `fetch` with the same body, in the
// same run and on the same kept-alive connection pool (Node's global undici
// dispatcher), interleaved one for one so both see the same server and
// machine. Prints the median of each in µs and their difference.
//
//   npm run bench                       starts a sessiond (SESSIOND_BIN, else ../../target/…)
//   node bench/validate.mjs --n 5000    more calls
//   SESSIOND_URL=… SESSIOND_API_KEY=… node bench/validate.mjs   a running sessiond
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { SessiondClient } from "../dist/index.js";
import { startSessiond } from "../scripts/sessiond-process.mjs";

const { values } = parseArgs({
  options: {
    n: { type: "string", default: "2000" },
    warmup: { type: "string", default: "300" },
  },
});
const N = Number(values.n);
const WARMUP = Number(values.warmup);

let sd;
let baseUrl = process.env.SESSIOND_URL;
let apiKey = process.env.SESSIOND_API_KEY;
if (!baseUrl) {
  sd = await startSessiond();
  baseUrl = sd.url;
  apiKey = sd.adminKey;
}

try {
  const client = new SessiondClient({ baseUrl, apiKey });
  const { token } = await client.createSession({ subject: "bench-user" });

  const url = `${baseUrl.replace(/\/+$/, "")}/v1/sessions/validate`;
  const headers = { authorization: `Bearer ${apiKey}`, "content-type": "application/json" };
  const raw = async () => {
    const res = await fetch(url, { method: "POST", headers, body: JSON.stringify({ token }) });
    const body = await res.json();
    if (res.status !== 200) throw new Error(`raw validate: HTTP ${res.status}`);
    return body;
  };
  const viaClient = () => client.validate(token);

  for (let i = 0; i < WARMUP; i++) {
    await viaClient();
    await raw();
  }

  const tClient = new Float64Array(N);
  const tRaw = new Float64Array(N);
  const now = process.hrtime.bigint;
  for (let i = 0; i < N; i++) {
    // Alternate which goes first, so neither always follows the other.
    if (i % 2 === 0) {
      let t = now();
      await viaClient();
      tClient[i] = Number(now() - t) / 1000;
      t = now();
      await raw();
      tRaw[i] = Number(now() - t) / 1000;
    } else {
      let t = now();
      await raw();
      tRaw[i] = Number(now() - t) / 1000;
      t = now();
      await viaClient();
      tClient[i] = Number(now() - t) / 1000;
    }
  }

  // Evidence of keep-alive: the connections sessiond has open now.
  const metrics = await (await fetch(`${baseUrl.replace(/\/+$/, "")}/metrics`)).text();
  const open = /^sessiond_connections_open (\d+)/m.exec(metrics)?.[1] ?? "?";

  const median = (a) => {
    const s = Float64Array.from(a).sort();
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const pct = (a, p) => Float64Array.from(a).sort()[Math.min(a.length - 1, Math.floor(a.length * p))];
  const diffs = tClient.map((c, i) => c - tRaw[i]);
  const mc = median(tClient);
  const mr = median(tRaw);
  console.log(`validate, ${N} sequential calls each, interleaved, keep-alive (node ${process.version})`);
  console.log(`machine: ${cpus().length} cpus, load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
  console.log(`connections open at sessiond after the run: ${open}`);
  console.log(`client: median ${mc.toFixed(1)} µs  (p90 ${pct(tClient, 0.9).toFixed(1)} µs)`);
  console.log(`raw:    median ${mr.toFixed(1)} µs  (p90 ${pct(tRaw, 0.9).toFixed(1)} µs)`);
  console.log(
    `difference of medians: ${(mc - mr).toFixed(1)} µs; median of paired differences: ${median(diffs).toFixed(1)} µs`,
  );
} finally {
  await sd?.stop();
}
