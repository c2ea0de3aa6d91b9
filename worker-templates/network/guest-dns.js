// `node:dns` for guests: workerd's (DNS over HTTPS, under the run's network policy), except
// that names every system resolves locally (localhost, IP literals) are answered here.
import { sandboxBuiltins } from "./secure-exec-bridge.js";

const real = process.getBuiltinModule("node:dns");
const { isIP } = process.getBuiltinModule("node:net");

function localAnswer(hostname, options) {
  const family = typeof options === "number" ? options : (options?.family ?? 0);
  const wanted = family === "IPv4" ? 4 : family === "IPv6" ? 6 : Number(family) || 0;
  const literal = isIP(String(hostname));
  let answers;
  if (literal) answers = [{ address: String(hostname), family: literal }];
  else if (/^localhost\.?$/i.test(String(hostname)) || /\.localhost\.?$/i.test(String(hostname))) {
    answers = [{ address: "127.0.0.1", family: 4 }, { address: "::1", family: 6 }];
  } else return undefined;
  answers = answers.filter((answer) => wanted === 0 || answer.family === wanted);
  return answers.length > 0 ? answers : undefined;
}

export function lookup(hostname, options, callback) {
  if (typeof options === "function") {
    callback = options;
    options = {};
  }
  const answers = localAnswer(hostname, options);
  if (!answers || typeof callback !== "function") return real.lookup(hostname, options, callback);
  queueMicrotask(() => (options?.all ? callback(null, answers) : callback(null, answers[0].address, answers[0].family)));
  return {};
}
lookup[Symbol.for("nodejs.util.promisify.custom")] = (hostname, options) => promises.lookup(hostname, options);

export const promises = {
  ...real.promises,
  async lookup(hostname, options) {
    const answers = localAnswer(hostname, options);
    if (!answers) return real.promises.lookup(hostname, options);
    return options?.all ? answers : answers[0];
  },
};

export * from "node:dns";
const dnsModule = { ...real, lookup, promises };
export default dnsModule;
for (const name of ["dns", "node:dns"]) sandboxBuiltins.set(name, dnsModule);
for (const name of ["dns/promises", "node:dns/promises"]) sandboxBuiltins.set(name, promises);
