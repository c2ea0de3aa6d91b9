// `node:https` for guests: the real module with the sandbox's client (see guest-http.js),
// so a failed request is an 'error' event on it like any other.
import { clientFor, ClientRequest } from "./secure-exec-http.js";
import { sandboxBuiltins } from "./secure-exec-bridge.js";

const realHttps = process.getBuiltinModule("node:https");

export * from "node:https";
export const { request, get } = clientFor("https:");
export { ClientRequest };
const httpsModule = { ...realHttps, request, get };
for (const name of ["https", "node:https"]) sandboxBuiltins.set(name, httpsModule);
export default httpsModule;
