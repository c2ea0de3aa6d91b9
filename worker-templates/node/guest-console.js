// Node's console over a `write(channel, text)` ("o" stdout, "e" stderr): log and friends,
// table, time, count, group, assert, trace. One module for every run's prelude and for the
// resident runner, so both print what Node prints. Loads node:util only for what is not a
// primitive. What differs between its users comes in as hooks.
const NativeMap = Map;
const NativeError = Error;
const NativeTypeError = TypeError;
const nativePerformanceNow = performance.now.bind(performance);
const now = () => nativePerformanceNow();

/**
 * `util()`: node:util (its user may install inspection first); `emitWarning(message)`: the
 * process's; `cleanStack(stack)`: the stack without its user's own frames;
 * `invalidArgType(name, expected, value)`: Node's ERR_INVALID_ARG_TYPE error.
 */
export function consoleKit({ util, emitWarning, cleanStack, invalidArgType }) {
  /** Node's util.format for the common case (primitives, no %), without loading node:util. */
  function format(...args) {
    let simple = true;
    for (let index = 0; index < args.length; index += 1) {
      const value = args[index];
      const type = typeof value;
      if ((type === "object" && value !== null) || type === "function" || type === "symbol") simple = false;
      else if (index === 0 && type === "string" && value.includes("%")) simple = false;
      if (!simple) break;
    }
    if (!simple) return util().format(...args);
    let text = "";
    for (let index = 0; index < args.length; index += 1) {
      const value = args[index];
      if (index > 0) text += " ";
      if (typeof value === "string") text += value;
      else if (typeof value === "bigint") text += `${value}n`;
      else if (Object.is(value, -0)) text += "-0";
      else text += String(value);
    }
    return text;
  }

  /**
   * A Node console writing through `write(channel, text)`: the global one goes straight to the
   * run's channels (or through a guest's replacement of `process.stdout.write`), `new Console`
   * through the streams it was given.
   */
  function makeConsole(write) {
    let groupIndent = "";
    const counts = new NativeMap();
    const timerLabels = new NativeMap();
    const out = (channel, text) => {
      if (groupIndent.length > 0) {
        if (text.includes("\n")) text = text.replace(/\n/g, `\n${groupIndent}`);
        text = groupIndent + text;
      }
      write(channel, `${text}\n`);
    };
    const table = (data, properties) => {
      if (properties !== undefined && !Array.isArray(properties)) throw invalidArgType("properties", "an instance of Array", properties);
      if (data === null || typeof data !== "object") return methods.log(data);
      const nodeUtil = util();
      const cell = (value) => {
        const depth = value !== null && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length > 2 ? -1 : 0;
        return nodeUtil.inspect(value, { depth, maxArrayLength: 3, breakLength: Infinity, colors: false });
      };
      const indexes = (length) => Array.from({ length }, (_, index) => cell(index));
      const types = nodeUtil.types;
      const mapIterator = types.isMapIterator(data);
      let keyValue = false;
      if (mapIterator) {
        keyValue = nodeUtil.inspect(data, { showHidden: true }).includes("=>");
        data = [...data];
      }
      if (keyValue || types.isMap(data)) {
        const keys = [];
        const values = [];
        for (const [key, value] of keyValue ? data : data.entries()) {
          keys.push(cell(key));
          values.push(cell(value));
        }
        return out("o", renderTable(["(iteration index)", "Key", "Values"], [indexes(keys.length), keys, values]));
      }
      if (types.isSetIterator(data) || mapIterator || types.isSet(data)) {
        const values = [...data].map(cell);
        return out("o", renderTable(["(iteration index)", "Values"], [indexes(values.length), values]));
      }
      const map = Object.create(null);
      let hasPrimitives = false;
      const primitiveValues = [];
      const rowKeys = Object.keys(data);
      for (let index = 0; index < rowKeys.length; index += 1) {
        const item = data[rowKeys[index]];
        const primitive = item === null || (typeof item !== "function" && typeof item !== "object");
        if (properties === undefined && primitive) {
          hasPrimitives = true;
          primitiveValues[index] = cell(item);
        } else {
          for (const key of properties ?? Object.keys(item)) {
            map[key] ??= [];
            map[key][index] = (primitive && properties) || !Object.prototype.hasOwnProperty.call(item, key) ? "" : cell(item[key]);
          }
        }
      }
      const head = Object.keys(map);
      const columns = Object.values(map);
      if (hasPrimitives) {
        head.push("Values");
        columns.push(primitiveValues);
      }
      head.unshift("(index)");
      columns.unshift(rowKeys);
      return out("o", renderTable(head, columns));
    };
    const methods = {
      log: (...args) => out("o", format(...args)),
      warn: (...args) => out("e", format(...args)),
      dir: (value, options) => out("o", util().inspect(value, { customInspect: false, ...options })),
      time(label = "default") {
        label = `${label}`;
        if (timerLabels.has(label)) return emitWarning(`Label '${label}' already exists for console.time()`);
        timerLabels.set(label, now());
      },
      timeEnd(label = "default") {
        label = `${label}`;
        if (!timerLabels.has(label)) return emitWarning(`No such label '${label}' for console.timeEnd()`);
        const started = timerLabels.get(label);
        timerLabels.delete(label);
        out("o", `${label}: ${formatDuration(now() - started)}`);
      },
      timeLog(label = "default", ...data) {
        label = `${label}`;
        if (!timerLabels.has(label)) return emitWarning(`No such label '${label}' for console.timeLog()`);
        const text = `${label}: ${formatDuration(now() - timerLabels.get(label))}`;
        out("o", data.length > 0 ? `${text} ${format(...data)}` : text);
      },
      count(label = "default") {
        label = `${label}`;
        const count = (counts.get(label) ?? 0) + 1;
        counts.set(label, count);
        out("o", `${label}: ${count}`);
      },
      countReset(label = "default") {
        label = `${label}`;
        if (!counts.has(label)) return emitWarning(`Count for '${label}' does not exist`);
        counts.delete(label);
      },
      group(...label) {
        if (label.length > 0) methods.log(...label);
        groupIndent += "  ";
      },
      groupEnd() {
        groupIndent = groupIndent.slice(0, -2);
      },
      assert(expression, ...args) {
        if (expression) return;
        if (args.length > 0 && typeof args[0] === "string") args[0] = `Assertion failed: ${args[0]}`;
        else args.unshift("Assertion failed");
        methods.warn(...args);
      },
      trace: function trace(...args) {
        const holder = { name: "Trace", message: format(...args) };
        NativeError.captureStackTrace(holder, trace);
        out("e", cleanStack(holder.stack));
      },
      table,
    };
    methods.info = methods.log;
    methods.debug = methods.log;
    methods.dirxml = methods.log;
    methods.error = methods.warn;
    methods.groupCollapsed = methods.group;
    return methods;
  }

  return { format, makeConsole };
}

/**
 * A process warning as Node's emitWarning makes it: an Error from a message (named by `type`,
 * or by an options object with `type`, `code`, `detail`), or the Error given; undefined for
 * anything else.
 */
export function warningOf(warning, type, code) {
  let name = "Warning";
  let detail;
  if (type !== null && typeof type === "object" && !Array.isArray(type)) {
    ({ type = "Warning", code, detail } = type);
    name = type;
  } else if (typeof type === "string") name = type;
  if (typeof code === "function") code = undefined;
  if (warning instanceof NativeError) return warning;
  if (typeof warning !== "string") return undefined;
  const error = new NativeError(warning);
  error.name = name;
  if (code !== undefined) error.code = code;
  if (detail !== undefined) error.detail = detail;
  return error;
}

/** What Node prints for a process warning; `first`: the hint that follows the first one. */
export function warningText(warning, pid, first) {
  const codeText = warning.code ? `[${warning.code}] ` : "";
  let text = `(node:${pid}) ${codeText}${warning.name}: ${warning.message}\n`;
  if (typeof warning.detail === "string") text += `${warning.detail}\n`;
  if (first) {
    const flag = warning.name === "DeprecationWarning" ? "--trace-deprecation" : "--trace-warnings";
    text += `(Use \`node ${flag} ...\` to show where the warning was created)\n`;
  }
  return text;
}


function formatDuration(ms) {
  let hours = 0;
  let minutes = 0;
  let seconds = 0;
  if (ms >= 1000) {
    if (ms >= 60_000) {
      if (ms >= 3_600_000) {
        hours = Math.floor(ms / 3_600_000);
        ms %= 3_600_000;
      }
      minutes = Math.floor(ms / 60_000);
      ms %= 60_000;
    }
    seconds = ms / 1000;
  }
  if (hours !== 0 || minutes !== 0) {
    const [whole, fraction] = seconds.toFixed(3).split(".");
    const lead = hours !== 0 ? `${hours}:${String(minutes).padStart(2, "0")}` : minutes;
    return `${lead}:${whole.padStart(2, "0")}.${fraction} (${hours !== 0 ? "h:m" : ""}m:ss.mmm)`;
  }
  if (seconds !== 0) return `${seconds.toFixed(3)}s`;
  return `${Number(ms.toFixed(3))}ms`;
}

/** Display width of a table cell (wide East Asian characters take two columns). */
function displayWidth(text) {
  // eslint-disable-next-line no-control-regex
  const plain = text.replace(/\u001b\[[0-9;]*m/g, "");
  let width = 0;
  for (const char of plain) {
    const code = char.codePointAt(0);
    if ((code >= 0x300 && code <= 0x36f) || code === 0x200b) continue;
    const wide =
      (code >= 0x1100 && code <= 0x115f) ||
      (code >= 0x2e80 && code <= 0xa4cf) ||
      (code >= 0xac00 && code <= 0xd7a3) ||
      (code >= 0xf900 && code <= 0xfaff) ||
      (code >= 0xfe30 && code <= 0xfe4f) ||
      (code >= 0xff00 && code <= 0xff60) ||
      (code >= 0xffe0 && code <= 0xffe6) ||
      (code >= 0x1f300 && code <= 0x1f64f) ||
      (code >= 0x1f900 && code <= 0x1f9ff) ||
      (code >= 0x20000 && code <= 0x3fffd);
    width += wide ? 2 : 1;
  }
  return width;
}

function renderTable(head, columns) {
  const widths = head.map((cell) => displayWidth(cell));
  const rowCount = Math.max(...columns.map((column) => column.length));
  const rows = [];
  for (let column = 0; column < head.length; column += 1) {
    for (let row = 0; row < rowCount; row += 1) {
      rows[row] ??= [];
      const cell = Object.prototype.hasOwnProperty.call(columns[column], row) ? columns[column][row] : "";
      rows[row][column] = cell;
      widths[column] = Math.max(widths[column] ?? 0, displayWidth(cell));
    }
  }
  const line = (cells) =>
    `\u2502 ${cells
      .map((cell, index) => {
        return cell + " ".repeat(widths[index] - displayWidth(cell));
      })
      .join(" \u2502 ")} \u2502`;
  const divider = widths.map((width) => "\u2500".repeat(width + 2));
  let text = `\u250c${divider.join("\u252c")}\u2510\n${line(head)}\n\u251c${divider.join("\u253c")}\u2524\n`;
  for (const row of rows) text += `${line(row)}\n`;
  return `${text}\u2514${divider.join("\u2534")}\u2518`;
}
