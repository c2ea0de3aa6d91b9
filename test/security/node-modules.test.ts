// `nodeModules` as an attacker uses it: specifiers that climb out of the directory (by `..`,
// by a sibling whose name extends it, by links, by a package's own exports) find nothing;
// spellings of one package share one cached bundle; the cache is bounded; and bundling a
// large package leaves the host's event loop, and so another runtime, responsive.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeRuntime } from "../../runtime/index.js";
import { MAX_CACHED_BUNDLES } from "../../host/compile/package-bundles.js";
import { createRuntime, expectServing } from "./helpers.js";

const SECRET = "SIBLING-CREDENTIAL-55d1";
let base: string;
let rt: NodeRuntime;

function writePackage(dir: string, name: string, files: Record<string, string>, manifest: Record<string, unknown> = {}): void {
  const root = join(dir, name);
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, "package.json"), JSON.stringify({ name, version: "1.0.0", main: "index.js", ...manifest }));
  for (const [file, source] of Object.entries(files)) {
    mkdirSync(join(root, file, ".."), { recursive: true });
    writeFileSync(join(root, file), source);
  }
}

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), "secure-exec-nm-"));
  const nodeModules = join(base, "node_modules");
  // A sibling whose name starts with the nodeModules path, and a directory outside.
  mkdirSync(join(base, "node_modules.bak"), { recursive: true });
  writeFileSync(join(base, "node_modules.bak", "creds.json"), JSON.stringify({ secret: SECRET }));
  writeFileSync(join(base, "node_modules.bak", "creds.js"), `module.exports = ${JSON.stringify(SECRET)};`);
  writePackage(base, "outside", { "index.js": `module.exports = ${JSON.stringify(SECRET)};` });
  writePackage(nodeModules, "left-pad", { "index.js": "module.exports = (s, n) => String(s).padStart(n);" });
  // Links out of nodeModules: a file inside a package, and a whole package.
  symlinkSync(join(base, "node_modules.bak", "creds.js"), join(nodeModules, "left-pad", "leak.js"));
  symlinkSync(join(base, "outside"), join(nodeModules, "linked-out"));
  // A package whose own exports or main point outside.
  writePackage(nodeModules, "exporter", {}, { exports: "../../node_modules.bak/creds.js" });
  writePackage(nodeModules, "mainer", {}, { main: "../../node_modules.bak/creds.js" });
  // A package that imports relatively out of the directory.
  writePackage(nodeModules, "climber", { "index.js": 'module.exports = require("../../node_modules.bak/creds.js");' });
  // Many small packages, for the cache bound.
  for (let i = 0; i < MAX_CACHED_BUNDLES + 8; i += 1) writePackage(nodeModules, `small-${i}`, { "index.js": `module.exports = ${i};` });
  // A large package: bundling it reads and parses ~3 MB.
  const big = Array.from({ length: 60_000 }, (_, i) => `exports.f${i} = function (a) { return a + ${i}; };`).join("\n");
  writePackage(nodeModules, "big", { "index.js": big });
  rt = await createRuntime({ nodeModules });
});
afterAll(async () => {
  await rt?.dispose();
  if (base) rmSync(base, { recursive: true, force: true });
});

describe("nodeModules containment is by real path", () => {
  it.each([
    "left-pad/../../node_modules.bak/creds.json",
    "left-pad/../../node_modules.bak/creds.js",
    "left-pad/../../node_modules.bak/creds",
    "left-pad/leak.js",
    "left-pad/leak",
    "linked-out",
    "exporter",
    "mainer",
    "@x/../../node_modules.bak/creds.js",
    "@../node_modules.bak/creds.js",
  ])("import %s finds nothing outside", async (specifier) => {
    const result = await rt.exec(`const m = await import(${JSON.stringify(specifier)}); console.log(JSON.stringify(m));`, { timeout: 20_000 });
    expect(result.stdout + result.stderr).not.toContain(SECRET);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/Cannot find package/);
  });

  it("a package's relative import out of the directory is not followed", async () => {
    const result = await rt.exec('import value from "climber"; console.log(value);', { timeout: 20_000 });
    expect(result.stdout + result.stderr).not.toContain(SECRET);
    expect(result.exitCode).not.toBe(0);
  });

  it("packages inside still import", async () => {
    const result = await rt.exec('import pad from "left-pad"; console.log(pad("x", 3));');
    expect(result).toEqual({ stdout: "  x\n", stderr: "", exitCode: 0 });
  });
});

describe("the bundle cache", () => {
  it("spellings of one package share one bundle", async () => {
    const before = rt.getResourceSnapshot().packageBundles.count;
    const spellings = ["big", "big/index.js", "big/./index.js", "big/././index.js", "big/./././index", "big/index", "big//index.js"];
    for (const spelling of spellings) {
      const result = await rt.exec(`import big from ${JSON.stringify(spelling)}; console.log(big.f7(1));`, { timeout: 60_000 });
      expect(result).toEqual({ stdout: "8\n", stderr: "", exitCode: 0 });
    }
    expect(rt.getResourceSnapshot().packageBundles.count - before).toBe(1);
  });

  it(`is bounded: importing ${MAX_CACHED_BUNDLES + 8} packages keeps at most ${MAX_CACHED_BUNDLES}`, async () => {
    const imports = Array.from({ length: MAX_CACHED_BUNDLES + 8 }, (_, i) => `import p${i} from "small-${i}";`).join("\n");
    const sum = Array.from({ length: MAX_CACHED_BUNDLES + 8 }, (_, i) => `p${i}`).join(" + ");
    const result = await rt.run(`${imports}\n__return(${sum});`, { timeout: 60_000 });
    expect(result.exitCode).toBe(0);
    expect(result.value).toBe(((MAX_CACHED_BUNDLES + 8) * (MAX_CACHED_BUNDLES + 7)) / 2);
    expect(rt.getResourceSnapshot().packageBundles.count).toBeLessThanOrEqual(MAX_CACHED_BUNDLES);
  });
});

describe("bundling happens off the host's event loop", () => {
  it("a bystander runtime keeps serving while a large package bundles under many spellings", async () => {
    const attacker = await createRuntime({ nodeModules: join(base, "node_modules") });
    const bystander = await createRuntime();
    try {
      await expectServing(bystander);
      const unloaded: number[] = [];
      for (let i = 0; i < 5; i += 1) {
        const started = performance.now();
        await bystander.run("__return(1)");
        unloaded.push(performance.now() - started);
      }
      // Fresh spellings, so nothing is cached for this runtime yet.
      const spellings = Array.from({ length: 6 }, (_, i) => `big/${"./".repeat(i + 1)}index.js`);
      const attack = attacker.exec(spellings.map((spelling, i) => `import big${i} from ${JSON.stringify(spelling)};`).join("\n"), { timeout: 60_000 });
      let attackDone = false;
      void attack.finally(() => (attackDone = true));
      const during: number[] = [];
      while (!attackDone) {
        const started = performance.now();
        const result = await bystander.run("__return(1)");
        during.push(performance.now() - started);
        expect(result.value).toBe(1);
      }
      expect((await attack).exitCode).toBe(0);
      // Generous: the bystander stays within a few seconds (a main-thread bundle of this package
      // takes over a second per spelling and would hold every one of its runs).
      expect(Math.max(...during)).toBeLessThan(Math.max(10 * Math.max(...unloaded), 1_500));
      expect(attacker.getResourceSnapshot().packageBundles.count).toBe(1);
    } finally {
      await Promise.all([attacker.dispose(), bystander.dispose()]);
    }
  });
});
