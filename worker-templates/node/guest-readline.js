// `node:readline` and `node:readline/promises` for guests: workerd's readline is a stub that
// never reads. This Interface reads lines from any Readable (process.stdin included) the way
// Node's does for a non-terminal input: 'line' per line, question(), prompt(), 'close' at the
// end of input, and async iteration.
import { sandboxBuiltins } from "./secure-exec-bridge.js";

const { EventEmitter, on } = process.getBuiltinModule("node:events");
const { StringDecoder } = process.getBuiltinModule("node:string_decoder");

const LINE_END = /\r\n|\n|\r/;

function useAfterClose() {
  const error = new Error("readline was closed");
  error.code = "ERR_USE_AFTER_CLOSE";
  return error;
}

function invalidArg(name, value) {
  const error = new TypeError(`The "${name}" argument must be of type function. Received ${value === undefined ? "undefined" : typeof value}`);
  error.code = "ERR_INVALID_ARG_TYPE";
  return error;
}

export class Interface extends EventEmitter {
  constructor(input, output, completer, terminal) {
    super();
    const options = input && typeof input === "object" && typeof input.on !== "function" && !Array.isArray(input) ? input : { input, output, completer, terminal };
    this.input = options.input;
    this.output = options.output;
    this.terminal = Boolean(options.terminal ?? this.output?.isTTY);
    this.line = "";
    this.cursor = 0;
    this.history = [];
    this.closed = false;
    this.paused = false;
    this.crlfDelay = options.crlfDelay === undefined ? 100 : Math.max(100, Number(options.crlfDelay));
    this._prompt = options.prompt === undefined ? "> " : String(options.prompt);
    this._questionCallback = undefined;
    this._pending = "";
    this._decoder = new StringDecoder("utf8");
    this._sawCarriageReturn = false;
    if (options.signal) {
      if (options.signal.aborted) queueMicrotask(() => this.close());
      else options.signal.addEventListener("abort", () => this.close(), { once: true });
    }
    if (!this.input) return;
    this._onData = (chunk) => this._receive(typeof chunk === "string" ? chunk : this._decoder.write(chunk));
    this._onEnd = () => {
      const rest = this._decoder.end();
      if (rest) this._receive(rest);
      if (this._pending.length > 0) {
        const last = this._pending;
        this._pending = "";
        this._emitLine(last);
      }
      this.close();
    };
    this._onError = (error) => this.emit("error", error);
    this.input.on("data", this._onData);
    this.input.on("end", this._onEnd);
    this.input.on("error", this._onError);
    this.input.resume?.();
  }

  _receive(text) {
    // A "\r\n" split across chunks is one line end.
    if (this._sawCarriageReturn && text.startsWith("\n")) text = text.slice(1);
    this._sawCarriageReturn = false;
    let rest = this._pending + text;
    for (;;) {
      const match = LINE_END.exec(rest);
      if (!match) break;
      if (match[0] === "\r" && match.index === rest.length - 1) this._sawCarriageReturn = true;
      const line = rest.slice(0, match.index);
      rest = rest.slice(match.index + match[0].length);
      // Node keeps going through the lines it has, even after close().
      this._emitLine(line);
    }
    this._pending = rest;
    this.line = rest;
  }

  _emitLine(line) {
    this.line = "";
    if (this._questionCallback) {
      const answer = this._questionCallback;
      this._questionCallback = undefined;
      answer(line);
      return;
    }
    this.emit("line", line);
  }

  _write(text) {
    if (this.output && typeof this.output.write === "function") this.output.write(text);
  }

  getPrompt() {
    return this._prompt;
  }

  setPrompt(prompt) {
    this._prompt = String(prompt);
  }

  prompt() {
    if (this.paused) this.resume();
    this._write(this._prompt);
  }

  question(query, options, callback) {
    if (typeof options === "function") {
      callback = options;
      options = {};
    }
    if (this.closed) throw useAfterClose();
    if (typeof callback !== "function") throw invalidArg("cb", callback);
    if (this._questionCallback) {
      this.prompt();
      return;
    }
    const signal = options?.signal;
    if (signal?.aborted) return;
    let settled = false;
    const onAbort = () => {
      if (settled) return;
      settled = true;
      this._questionCallback = undefined;
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    this._questionCallback = (answer) => {
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      callback(answer);
    };
    if (this.paused) this.resume();
    this._write(String(query));
  }

  write(data) {
    if (typeof data === "string" && !this.closed) this._receive(data);
  }

  pause() {
    if (this.paused || this.closed) return this;
    this.input?.pause?.();
    this.paused = true;
    this.emit("pause");
    return this;
  }

  resume() {
    if (!this.paused || this.closed) return this;
    this.input?.resume?.();
    this.paused = false;
    this.emit("resume");
    return this;
  }

  close() {
    if (this.closed) return;
    this.pause();
    if (this.input) {
      this.input.removeListener("data", this._onData);
      this.input.removeListener("end", this._onEnd);
      this.input.removeListener("error", this._onError);
    }
    this.closed = true;
    this.emit("close");
  }

  getCursorPos() {
    return { rows: 0, cols: this.cursor };
  }

  [Symbol.asyncIterator]() {
    if (this._lines === undefined) {
      const controller = new AbortController();
      this.once("close", () => controller.abort());
      const events = on(this, "line", { signal: controller.signal, close: ["close"] });
      this._lines = (async function* lines() {
        try {
          for await (const [line] of events) yield line;
        } catch (error) {
          if (error?.name !== "AbortError") throw error;
        }
      })();
    }
    return this._lines;
  }

  [Symbol.dispose]() {
    this.close();
  }
}

export function createInterface(input, output, completer, terminal) {
  return new Interface(input, output, completer, terminal);
}

// Cursor control writes the ANSI sequences Node writes.
const ESC = "\x1b[";

function writeTo(stream, text, callback) {
  if (!stream || typeof stream.write !== "function") {
    if (typeof callback === "function") queueMicrotask(callback);
    return true;
  }
  return stream.write(text, callback);
}

export function clearLine(stream, dir, callback) {
  const code = dir < 0 ? `${ESC}1K` : dir > 0 ? `${ESC}0K` : `${ESC}2K`;
  return writeTo(stream, code, callback);
}

export function clearScreenDown(stream, callback) {
  return writeTo(stream, `${ESC}0J`, callback);
}

export function cursorTo(stream, x, y, callback) {
  if (typeof y === "function") {
    callback = y;
    y = undefined;
  }
  const code = typeof y === "number" ? `${ESC}${y + 1};${x + 1}H` : `${ESC}${x + 1}G`;
  return writeTo(stream, code, callback);
}

export function moveCursor(stream, dx, dy, callback) {
  let code = "";
  if (dx < 0) code += `${ESC}${-dx}D`;
  else if (dx > 0) code += `${ESC}${dx}C`;
  if (dy < 0) code += `${ESC}${-dy}A`;
  else if (dy > 0) code += `${ESC}${dy}B`;
  return writeTo(stream, code, callback);
}

export function emitKeypressEvents() {}

/** `readline/promises`: question() returns a promise. */
class PromisesInterface extends Interface {
  question(query, options) {
    return new Promise((resolve, reject) => {
      const signal = options?.signal;
      if (signal?.aborted) {
        reject(signal.reason ?? new DOMException("The operation was aborted", "AbortError"));
        return;
      }
      try {
        super.question(query, options ?? {}, resolve);
      } catch (error) {
        reject(error);
        return;
      }
      signal?.addEventListener("abort", () => reject(signal.reason ?? new DOMException("The operation was aborted", "AbortError")), { once: true });
    });
  }
}

/** `readline/promises`' Readline: cursor commands queued, then written by commit(). */
class Readline {
  constructor(stream) {
    this.stream = stream;
    this.todo = "";
  }
  clearLine(dir) {
    this.todo += dir < 0 ? `${ESC}1K` : dir > 0 ? `${ESC}0K` : `${ESC}2K`;
    return this;
  }
  clearScreenDown() {
    this.todo += `${ESC}0J`;
    return this;
  }
  cursorTo(x, y) {
    this.todo += typeof y === "number" ? `${ESC}${y + 1};${x + 1}H` : `${ESC}${x + 1}G`;
    return this;
  }
  moveCursor(dx, dy) {
    if (dx < 0) this.todo += `${ESC}${-dx}D`;
    else if (dx > 0) this.todo += `${ESC}${dx}C`;
    if (dy < 0) this.todo += `${ESC}${-dy}A`;
    else if (dy > 0) this.todo += `${ESC}${dy}B`;
    return this;
  }
  commit() {
    const text = this.todo;
    this.todo = "";
    return new Promise((resolve) => writeTo(this.stream, text, resolve));
  }
  rollback() {
    this.todo = "";
    return this;
  }
}

export const promises = {
  Interface: PromisesInterface,
  Readline,
  createInterface: (input, output, completer, terminal) => new PromisesInterface(input, output, completer, terminal),
};

const readlineModule = { Interface, createInterface, clearLine, clearScreenDown, cursorTo, moveCursor, emitKeypressEvents, promises };
sandboxBuiltins.set("readline", readlineModule);
sandboxBuiltins.set("node:readline", readlineModule);
sandboxBuiltins.set("readline/promises", promises);
sandboxBuiltins.set("node:readline/promises", promises);
export default readlineModule;
