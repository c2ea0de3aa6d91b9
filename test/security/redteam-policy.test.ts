// Permission patterns are judged in time linear in the guest's subject. A `*` pattern used
// to become a backtracking regex (`.*` per star): with a rule like `/**` + `/*.pem` a guest's
// 4 KB path held the host's event loop for ~12 s (every runtime and tenant stalled), through
// `node <path>` (the host reads the script under permissions.fs) or a file the guest wrote
// (the host re-checks the run's changes).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { globMatches, isPermitted } from "../../host/api/options-core.js";
import { fsPolicyDenial } from "../../host/capabilities/fs/virtual-fs.js";
import type { NodeRuntime } from "../../runtime/index.js";
import { createRuntime, expectServing, slowestWhile } from "./helpers.js";

const DENY_PEM = { default: "allow" as const, rules: [{ pattern: "/**/*.pem", action: "deny" as const }] };
const LONG_PATH = "/a".repeat(2000);

describe("permission patterns against guest-controlled subjects", () => {
  let rt: NodeRuntime;
  let bystander: NodeRuntime;
  beforeAll(async () => {
    [rt, bystander] = await Promise.all([
      createRuntime({ files: { "/keys/host.pem": "PEM-SECRET", "/workspace/ok.js": 'console.log("ok")' }, permissions: { fs: DENY_PEM } }),
      createRuntime(),
    ]);
    await bystander.run("__return(0)");
  }, 60_000);
  afterAll(async () => {
    await Promise.all([rt?.dispose(), bystander?.dispose()]);
  });

  it("a long `node <path>` under a `**` rule does not stall another runtime", async () => {
    const attack = rt.run(
      `import { execFile } from "node:child_process";
       execFile("node", [${JSON.stringify(`${LONG_PATH}/x.js`)}], (error, stdout, stderr) => __return({ code: error?.code, stderr: String(stderr).slice(0, 120) }));`,
      { timeout: 60_000 },
    );
    const slowest = await slowestWhile(bystander, attack);
    const result = await attack;
    expect(result.exitCode).toBe(0);
    // Not denied (no rule matches), and no such file: the host looked it up under the policy.
    expect((result.value as { stderr: string }).stderr).toContain("Cannot find module");
    // Unloaded, a trivial run takes tens of ms; the regex held the host for ~12 s.
    expect(slowest).toBeLessThan(5_000);
    await expectServing(rt);
  }, 120_000);

  it("a file written at a long path is re-checked by the host without stalling it", async () => {
    const attack = rt.run(
      `import fs from "node:fs";
       fs.mkdirSync(${JSON.stringify(LONG_PATH)}, { recursive: true });
       fs.writeFileSync(${JSON.stringify(`${LONG_PATH}/x.txt`)}, "x");
       let denied = "";
       try { fs.writeFileSync(${JSON.stringify(`${LONG_PATH}/x.pem`)}, "x"); } catch (error) { denied = error.code; }
       __return(denied);`,
      { timeout: 60_000 },
    );
    const slowest = await slowestWhile(bystander, attack);
    const result = await attack;
    expect(result.exitCode).toBe(0);
    expect(result.value).toBe("EACCES");
    expect(slowest).toBeLessThan(5_000);
    const later = await rt.run(`import fs from "node:fs"; __return(fs.existsSync(${JSON.stringify(`${LONG_PATH}/x.txt`)}))`);
    expect(later.value).toBe(true);
  }, 120_000);

  it("the rule still denies what it names, in the guest and through node <file>", async () => {
    const result = await rt.run(`
      import fs from "node:fs";
      import { execFile } from "node:child_process";
      let read = "";
      try { read = fs.readFileSync("/keys/host.pem", "utf8"); } catch (error) { read = error.code; }
      execFile("node", ["/keys/host.pem"], (error, stdout, stderr) => __return({ read, child: String(stderr).includes("EACCES"), ok: fs.readFileSync("/workspace/ok.js", "utf8").length > 0 }));
    `);
    expect(result.value).toEqual({ read: "EACCES", child: true, ok: true });
  }, 60_000);
});

describe("globMatches", () => {
  const asRegex = (pattern: string) => new RegExp(`^${pattern.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
  const patterns = ["*", "/secrets*", "/**/*.pem", "/data/*/*.key", "a*b*c", "*a*", "exact", "", "**", "/x/*", "*.json*"];
  const subjects = ["", "a", "abc", "aXbYc", "acb", "/secrets", "/secrets/key.json", "/a/b/c.pem", "/.pem", ".pem", "/data/x/y.key", "/data/y.key", "exact", "exactly", "/x/", "/x", "a.json.bak", "**"];

  it("agrees with the regex it replaces (no line breaks)", () => {
    for (const pattern of patterns) {
      for (const subject of subjects) expect(globMatches(pattern, subject), `${pattern} ~ ${subject}`).toBe(asRegex(pattern).test(subject));
    }
  });

  it("lets `*` match line breaks: a deny rule cannot be stepped around with one", () => {
    expect(globMatches("/secrets/*", "/secrets/a\nb")).toBe(true);
    expect(isPermitted({ default: "allow", rules: [{ pattern: "admin*", action: "deny" }] }, "admin\u2028x", "allow")).toBe(false);
    expect(fsPolicyDenial({ default: "allow", rules: [{ pattern: "read:/s/*", action: "deny" }] }, "read", "/s/\r")).toBeDefined();
  });

  it("is linear on a hostile subject", () => {
    // Each of these took seconds or more as a regex; here they are microseconds.
    expect(globMatches("/**/*.pem", "/a".repeat(500_000))).toBe(false);
    expect(globMatches("/data/*/*.key", `/data${"/a".repeat(500_000)}`)).toBe(false);
    expect(globMatches("*a*a*a*a*b", "a".repeat(1_000_000))).toBe(false);
  });
});
