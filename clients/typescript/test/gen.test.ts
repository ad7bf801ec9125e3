// `npm run check-gen` against the real sessiond: the committed openapi.json
// and src/generated/api.ts are what the server's document produces, and
// the check fails when they are not.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { packageRoot, startSessiond, type SessiondProcess } from "./helpers.js";

const run = promisify(execFile);
const gen = join(packageRoot, "scripts", "gen.mjs");

let sd: SessiondProcess;
before(async () => {
  sd = await startSessiond();
});
after(async () => {
  await sd?.stop();
});

async function check(root?: string): Promise<{ code: number; out: string }> {
  const args = [gen, "--check", "--url", sd.url, ...(root ? ["--root", root] : [])];
  try {
    const { stdout, stderr } = await run(process.execPath, args, { cwd: packageRoot });
    return { code: 0, out: stdout + stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: err.code ?? 1, out: (err.stdout ?? "") + (err.stderr ?? "") };
  }
}

test("check-gen passes: the committed types match the running server's document", async () => {
  const r = await check();
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /match/);
});

test("check-gen fails when the committed types or document differ", async () => {
  const root = await mkdtemp(join(tmpdir(), "sessiond-ts-gen-"));
  try {
    await cp(join(packageRoot, "openapi.json"), join(root, "openapi.json"));
    await cp(join(packageRoot, "src", "generated"), join(root, "src", "generated"), { recursive: true });
    // One run reports both: types edited by hand, and a document the
    // server no longer serves.
    const types = join(root, "src", "generated", "api.ts");
    await writeFile(
      types,
      (await readFile(types, "utf8")).replace("csrf_token: string;", "csrf_token: number;"),
    );
    const doc = join(root, "openapi.json");
    await writeFile(doc, (await readFile(doc, "utf8")).replace('"title": "sessiond"', '"title": "older"'));
    const r = await check(root);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /openapi\.json differs/);
    assert.match(r.out, /api\.ts differs/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
