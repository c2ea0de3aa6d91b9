// The guest module of one Code Mode execution: the value codec, one global per provider and
// connector (each method a host call through the executor's dispatch tool), the preludes,
// console capture, then the model's function, whose awaited value is handed back with
// `__return`. The run ends as soon as that function settles (`process.exit`), so a tool call
// it did not await cannot keep the sandbox alive.
import { parse, parseExpressionAt, type Node } from "acorn";
import { GUEST_VALUE_CODEC } from "./values.js";

/** First line of every log entry the guest writes to stdout (one JSON array per line). */
export const LOG_LINE_PREFIX = "\u001e";

export interface GuestProvider {
  name: string;
  /** Sanitised tool names the namespace answers. */
  tools: string[];
  prelude?: string;
}

export interface GuestModuleInput {
  code: string;
  providers: GuestProvider[];
  connectors: string[];
  toolName: string;
}

/** Environment variable that carries an execution's dispatch token into its guest. */
export const TOKEN_ENV = "SECURE_EXEC_CODEMODE_TOKEN";

const FENCE = /^```(?:js|javascript|ts|typescript|jsx|tsx)?[ \t]*\r?\n([\s\S]*?)\r?\n?```\s*$/;

/**
 * Code Mode code is an (async) arrow function expression. Models also send fenced code,
 * a bare function, or plain statements: those become an async arrow function whose value is
 * the last expression statement, as Code Mode's executors do.
 */
export function normalizeCode(code: string): string {
  let source = code.trim();
  const fenced = FENCE.exec(source);
  if (fenced) source = fenced[1]!.trim();
  if (source === "") return "async () => {}";
  let body: Node[];
  try {
    body = (parse(source, { ecmaVersion: "latest", sourceType: "module", allowAwaitOutsideFunction: true }) as unknown as { body: Node[] }).body;
  } catch {
    // An anonymous function expression (`async function () {}`) is no statement, but is code.
    if (isFunctionExpression(source)) return source;
    // Not a program on its own: the syntax check reports it.
    return `async () => {\n${source}\n}`;
  }
  const only = body.length === 1 ? body[0]! : undefined;
  if (only?.type === "ExpressionStatement") {
    const expression = (only as unknown as { expression: Node }).expression;
    if (expression.type === "ArrowFunctionExpression" || expression.type === "FunctionExpression") return source;
  }
  if (only?.type === "FunctionDeclaration") {
    const id = (only as unknown as { id: { name: string } | null }).id;
    if (id) return `async () => {\n${source}\nreturn await ${id.name}();\n}`;
  }
  const last = body[body.length - 1];
  if (last?.type === "ExpressionStatement") {
    const expression = (last as unknown as { expression: Node }).expression;
    return `async () => {\n${source.slice(0, last.start)}\nreturn (${source.slice(expression.start, expression.end)});\n}`;
  }
  return `async () => {\n${source}\n}`;
}

function isFunctionExpression(source: string): boolean {
  try {
    const expression = parseExpressionAt(source, 0, { ecmaVersion: "latest", sourceType: "module" });
    return (expression.type === "FunctionExpression" || expression.type === "ArrowFunctionExpression") && source.slice(expression.end).trim() === "";
  } catch {
    return false;
  }
}

/** A syntax error of the code (located in the code as sent, when it can be), or undefined. */
export function syntaxErrorOf(code: string, normalized: string): string | undefined {
  const options = { ecmaVersion: "latest", sourceType: "module", allowAwaitOutsideFunction: true } as const;
  try {
    parse(`(${normalized}\n)`, options);
    return undefined;
  } catch (error) {
    let located = error;
    try {
      parse(code.trim(), options);
    } catch (original) {
      located = original;
    }
    return `SyntaxError: ${located instanceof Error ? located.message : String(located)}`;
  }
}

/** The ES module one execution runs (`code` already normalised). */
export function buildGuestModule(input: GuestModuleInput): string {
  const providerInits = input.providers.map(
    (provider) => `  const ${provider.name} = __codemode.provider(${JSON.stringify(provider.name)}, ${JSON.stringify(provider.tools)});`,
  );
  const connectorInits = input.connectors.map((name) => `  const ${name} = __codemode.connector(${JSON.stringify(name)});`);
  const preludes = input.providers.filter((provider) => provider.prelude).map((provider) => `  ${provider.prelude}\n  ;`);
  return [
    `const __codemode = (() => {`,
    GUEST_VALUE_CODEC,
    `  const TOOL = ${JSON.stringify(input.toolName)};`,
    // The token comes in the env, so the same code makes the same module (and gets preloaded isolates).
    `  const TOKEN = process.env[${JSON.stringify(TOKEN_ENV)}];`,
    `  delete process.env[${JSON.stringify(TOKEN_ENV)}];`,
    `  const callHostTool = globalThis.callHostTool;`,
    `  const hand = globalThis.__return;`,
    `  const exit = process.exit;`,
    `  const writeLine = console.log.bind(console);`,
    `  const describe = (value) => {`,
    `    if (typeof value === "string") return value;`,
    `    if (value instanceof Error) return value.stack || String(value);`,
    `    if (typeof value === "object" && value !== null) { try { const text = JSON.stringify(value); if (text !== undefined) return text; } catch {} }`,
    `    return String(value);`,
    `  };`,
    `  const log = (level) => (...args) => { writeLine(${JSON.stringify(LOG_LINE_PREFIX)} + JSON.stringify([level, args.map(describe).join(" ")])); };`,
    `  console.log = log("log"); console.info = log("log"); console.debug = log("log");`,
    `  console.warn = log("warn"); console.error = log("error");`,
    `  const call = async (kind, target, method, args) => {`,
    `    if (typeof TOKEN !== "string") throw new Error("the runtime's env permission hides ${TOKEN_ENV}; allow it so Code Mode tools can be called");`,
    `    const reply = await callHostTool(TOOL, { token: TOKEN, kind, target, method, args: encodeValue(args) ?? "[]" });`,
    `    if (reply.pause) throw new Error("__CODEMODE_PAUSE__");`,
    `    if (!reply.ok) throw new Error(reply.error);`,
    `    return reply.value === undefined ? undefined : decodeValue(reply.value);`,
    `  };`,
    `  const namespace = (known, dispatch) => new Proxy({}, {`,
    `    get(target, name) {`,
    `      if (Object.prototype.hasOwnProperty.call(target, name)) return target[name];`,
    `      if (typeof name !== "string") return undefined;`,
    // Promise resolution and JSON.stringify probe these; they are methods only when a tool has the name.
    `      if ((name === "then" || name === "toJSON") && !known.has(name)) return undefined;`,
    `      return (...args) => dispatch(name, args);`,
    `    },`,
    `  });`,
    // An error's cause is what a model can act on (a refused fetch is "fetch failed" with the refusal as its cause).
    `  const messageOf = (error) => {`,
    `    if (!(error instanceof Error)) return String(error);`,
    `    const message = error.message || error.name || "Error";`,
    `    return error.cause instanceof Error && error.cause.message ? message + " (cause: " + error.cause.message + ")" : message;`,
    `  };`,
    `  return {`,
    `    provider: (name, tools) => namespace(new Set(tools), (method, args) => call("provider", name, method, args)),`,
    `    connector: (name) => namespace(new Set(), (method, args) => call("connector", name, method, [args[0]])),`,
    `    finish(outcome) {`,
    `      let returned;`,
    `      if ("error" in outcome) returned = { error: messageOf(outcome.error) };`,
    `      else {`,
    `        try { returned = { result: encodeValue(outcome.result) }; }`,
    `        catch (error) { returned = { error: "the result cannot be returned: " + messageOf(error) }; }`,
    `      }`,
    `      hand(returned);`,
    `      exit(0);`,
    `    },`,
    `  };`,
    `})();`,
    `const __codemodeMain = async () => {`,
    ...providerInits,
    ...connectorInits,
    `  let __codemodeOutcome;`,
    `  try {`,
    ...preludes,
    `    __codemodeOutcome = { result: await (`,
    input.code,
    `    )() };`,
    `  } catch (error) {`,
    `    __codemodeOutcome = { error };`,
    `  }`,
    // Outside the try: process.exit throws to end the run.
    `  __codemode.finish(__codemodeOutcome);`,
    `};`,
    `await __codemodeMain();`,
    ``,
  ].join("\n");
}
