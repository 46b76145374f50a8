// The build behind sdk/js/build: plugin folder -> one bundled ES module ->
// WebAssembly component of the filter-plugin or enricher-plugin world.
//
//   node build.mjs --tools DIR --sdk DIR --wit DIR PLUGIN_DIR OUT.wasm
//
// 1. The kind: package.json's "weir": { "kind" }, else what the main module
//    imports from "weir" (`filter` or `enricher`).
// 2. esbuild bundles a generated entry (the plugin module + the SDK's
//    component glue) into plugin.js: `weir` resolves to this SDK, its `#host`
//    to the WIT imports (condition `weir-component`), `weir:*` stays an import.
// 3. The source map's mappings are appended to the bundle, so that a dead
//    letter's reason names the plugin's own file and line.
// 4. componentize-js makes the component against the repository's WIT, with
//    every optional WASI feature off unless package.json's "weir": {
//    "features" } keeps some; the result is written next to OUT and renamed.

import { existsSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";

const FEATURES = ["stdio", "random", "clocks", "http", "fetch-event"];
const GRANTABLE = ["stdio", "random", "clocks"];

class BuildError extends Error {}

function fail(message) {
  throw new BuildError(message);
}

function parseArgs(argv) {
  const opts = { positional: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--tools" || a === "--sdk" || a === "--wit") opts[a.slice(2)] = argv[++i];
    else opts.positional.push(a);
  }
  if (!opts.tools || !opts.sdk || !opts.wit || opts.positional.length !== 2) {
    fail("usage: build.mjs --tools DIR --sdk DIR --wit DIR PLUGIN_DIR OUT.wasm");
  }
  return opts;
}

function readPackage(dir) {
  const path = join(dir, "package.json");
  if (!existsSync(path)) return {};
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    fail(`${path}: ${e.message}`);
  }
}

/** `filter` or `enricher`: package.json's "weir.kind", else what the module imports from "weir". */
function detectKind(pkg, mainPath) {
  const declared = pkg.weir?.kind;
  if (declared !== undefined) {
    if (declared !== "filter" && declared !== "enricher") {
      fail(`package.json: "weir": { "kind": ${JSON.stringify(declared)} } must be "filter" or "enricher"`);
    }
    return declared;
  }
  const source = readFileSync(mainPath, "utf8");
  const names = new Set();
  for (const m of source.matchAll(/import\s*\{([^}]*)\}\s*from\s*["']weir["']/g)) {
    for (const part of m[1].split(",")) names.add(part.trim().split(/\s+as\s+/)[0]);
  }
  const isFilter = names.has("filter");
  const isEnricher = names.has("enricher");
  if (isFilter !== isEnricher) return isFilter ? "filter" : "enricher";
  fail(
    `cannot tell whether ${mainPath} is a filter or an enricher (it imports ${isFilter ? "both" : "neither"} from "weir"): set "weir": { "kind": "filter" } or { "kind": "enricher" } in its package.json`,
  );
}

/**
 * The WASI features to disable: all of them but those package.json's
 * "weir.features" keeps (stdio, random, clocks: what the host grants) and
 * those $WEIR_JS_ENABLE names (any, comma separated: for testing the host's
 * refusal of a component that imports more).
 */
function disabledFeatures(pkg) {
  const keep = pkg.weir?.features ?? [];
  if (!Array.isArray(keep)) fail(`package.json: "weir": { "features" } must be an array such as ["clocks"]`);
  for (const f of keep) {
    if (!GRANTABLE.includes(f)) {
      fail(`package.json: "weir.features" lists ${JSON.stringify(f)}: the host grants only ${GRANTABLE.join(", ")} (no HTTP, no sockets)`);
    }
  }
  const forced = (process.env.WEIR_JS_ENABLE ?? "").split(/[\s,]+/).filter(Boolean);
  for (const f of forced) {
    if (!FEATURES.includes(f)) fail(`WEIR_JS_ENABLE lists ${JSON.stringify(f)}: the features are ${FEATURES.join(", ")}`);
  }
  return FEATURES.filter((f) => !keep.includes(f) && !forced.includes(f));
}

async function main() {
  process.stdout.on("error", () => {}); // a closed pipe (| head) is not a failed build
  const t0 = performance.now();
  const opts = parseArgs(process.argv.slice(2));
  const tools = join(opts.tools, "node_modules");
  const sdk = realpathSync(opts.sdk);
  const wit = resolve(opts.wit);
  const pluginDir = realpathSync(opts.positional[0]);
  const out = resolve(opts.positional[1]);
  if (!statSync(pluginDir).isDirectory()) fail(`${opts.positional[0]} is not a folder`);
  if (!existsSync(join(wit, "plugin.wit"))) fail(`no plugin.wit in ${wit}`);
  if (!existsSync(dirname(out))) fail(`${dirname(out)} does not exist`);

  const pkg = readPackage(pluginDir);
  const mainPath = resolve(pluginDir, pkg.main ?? "app.js");
  if (!existsSync(mainPath)) fail(`${mainPath} does not exist (set "main" in package.json for another file)`);
  const kind = detectKind(pkg, mainPath);
  const disable = disabledFeatures(pkg);

  const { build } = (await import(pathToFileURL(join(tools, "esbuild/lib/main.js")))).default;
  const { componentize } = await import(pathToFileURL(join(tools, "@bytecodealliance/componentize-js/src/componentize.js")));
  const { componentWit } = await import(pathToFileURL(join(tools, "@bytecodealliance/jco/dist/api.js")));

  const work = mkdtempSync(join(tmpdir(), "weir-js-build-"));
  try {
    // `weir` for the plugin's imports, when it has no node_modules of its own.
    mkdirSync(join(work, "node_modules"));
    symlinkSync(sdk, join(work, "node_modules", "weir"), "dir");
    const entry = join(work, "entry.js");
    writeFileSync(
      entry,
      `import * as app from ${JSON.stringify(mainPath)};\n` +
        `import { component } from ${JSON.stringify(join(sdk, "lib", "component.js"))};\n` +
        `export const ${kind} = component(app, ${JSON.stringify(kind)}, ${JSON.stringify(disable)});\n`,
    );

    const bundle = join(work, "plugin.js");
    const result = await build({
      entryPoints: [entry],
      outfile: bundle,
      bundle: true,
      format: "esm",
      platform: "neutral",
      conditions: ["weir-component"],
      mainFields: ["module", "main"],
      external: ["weir:*", "wasi:*"],
      nodePaths: [join(work, "node_modules")],
      sourcemap: "external",
      sourcesContent: false,
      legalComments: "none",
      charset: "utf8",
      logLevel: "silent",
    }).catch((e) => {
      const errors = (e.errors ?? []).map((m) => {
        const at = m.location ? `${m.location.file}:${m.location.line}:${m.location.column + 1}: ` : "";
        return `  ${at}${m.text}`;
      });
      fail(`bundling ${relative(process.cwd(), mainPath)} failed:\n${errors.join("\n") || e.message}`);
    });
    for (const w of result.warnings) console.error(`warning: ${w.text}`);

    // The bundle's source map, for the stack frames of dead letters: sources
    // relative to the plugin's folder, the SDK's as null (skipped).
    const map = JSON.parse(readFileSync(`${bundle}.map`, "utf8"));
    const sources = map.sources.map((s) => {
      const abs = resolve(work, s);
      if (abs.startsWith(sdk + sep) || abs === entry) return null;
      const rel = relative(pluginDir, abs);
      return rel.startsWith("..") || isAbsolute(rel) ? abs : rel;
    });
    // Every source by a readable name, for positions in build errors.
    const named = map.sources.map((src, i) => {
      const abs = resolve(work, src);
      return sources[i] ?? (abs.startsWith(sdk + sep) ? `weir/${relative(sdk, abs)}` : relative(pluginDir, abs));
    });
    const { locator } = await import(pathToFileURL(join(sdk, "lib", "sourcemap.js")));
    const at = locator({ file: "plugin.js", sources: named, mappings: map.mappings });
    const mapped = (text) => text.replace(/plugin\.js:(\d+):(\d+)/g, (all, l, c) => at("plugin.js", Number(l), Number(c)) ?? all);
    let code = readFileSync(bundle, "utf8").replace(/\n\/\/# sourceMappingURL=.*\n?$/, "\n");
    code += `globalThis[Symbol.for("weir.sourcemap")] = ${JSON.stringify({ file: "plugin.js", sources, mappings: map.mappings })};\n`;
    writeFileSync(bundle, code);

    // componentize-js names modules by their path under the current folder.
    const cwd = process.cwd();
    process.chdir(work);
    let component;
    try {
      ({ component } = await componentize({
        sourcePath: bundle,
        witPath: wit,
        worldName: `${kind}-plugin`,
        disableFeatures: disable,
      }));
    } catch (e) {
      fail(`componentize-js failed:\n${mapped(e.message)}`);
    } finally {
      process.chdir(cwd);
    }

    const tmp = join(dirname(out), `.${basename(out)}.tmp-${process.pid}`);
    writeFileSync(tmp, component);
    renameSync(tmp, out);

    const imports = (await componentWit(component))
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l.startsWith("import "))
      .map((l) => l.slice(7).replace(/;$/, ""));
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    const mib = (component.length / 1048576).toFixed(1);
    console.log(`${opts.positional[1]}: ${kind} component, ${component.length} bytes (${mib} MiB), built in ${secs} s`);
    console.log(`  WASI features disabled: ${disable.join(", ") || "none"}`);
    console.log(`  imports: ${imports.join(", ")}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (e) {
  console.error(`sdk/js/build: ${e instanceof BuildError ? e.message : e.stack}`);
  process.exitCode = 1;
}
