// The templates `weir plugin new NAME --lang js` copies: instantiated in a
// temporary folder with `{{name}}` replaced, each passes its own `node --test`
// (with `weir` resolved by a node_modules link, and by the register hook).

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const sdk = fileURLToPath(new URL("..", import.meta.url));
// A runner of its own, not a child reporting to this one.
const env = { ...process.env };
delete env.NODE_TEST_CONTEXT;

function instantiate(kind, name) {
  const dir = join(mkdtempSync(join(tmpdir(), "weir-js-template-")), name);
  mkdirSync(dir);
  const from = join(sdk, "template", kind);
  for (const file of readdirSync(from)) {
    writeFileSync(join(dir, file), readFileSync(join(from, file), "utf8").replaceAll("{{name}}", name));
  }
  return dir;
}

for (const kind of ["filter", "enricher"]) {
  test(`the ${kind} template passes its own tests as generated`, () => {
    const name = `new-js-${kind}`;
    const dir = instantiate(kind, name);
    try {
      assert.ok(!readFileSync(join(dir, "app.js"), "utf8").includes("{{"), "placeholders left");
      const viaHook = spawnSync(process.execPath, ["--import", join(sdk, "register.js"), "--test"], { cwd: dir, encoding: "utf8", env });
      assert.equal(viaHook.status, 0, viaHook.stdout + viaHook.stderr);
      mkdirSync(join(dir, "node_modules"));
      symlinkSync(sdk, join(dir, "node_modules", "weir"), "dir");
      const viaLink = spawnSync(process.execPath, ["--test"], { cwd: dir, encoding: "utf8", env });
      assert.equal(viaLink.status, 0, viaLink.stdout + viaLink.stderr);
      assert.match(viaLink.stdout, /# pass [1-9]/);
      assert.match(viaLink.stdout, /# fail 0/);
    } finally {
      rmSync(join(dir, ".."), { recursive: true, force: true });
    }
  });
}
