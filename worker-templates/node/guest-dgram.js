// `node:dgram` for guests: there are no UDP sockets in the sandbox (workerd's never call
// back), so creating one fails at once with a clear error.
import { refusing } from "./secure-exec-unsupported.js";
import { sandboxBuiltins } from "./secure-exec-bridge.js";

export const createSocket = refusing("dgram.createSocket", "guests have no UDP sockets");
export class Socket {
  constructor() {
    createSocket();
  }
}
const dgramModule = { createSocket, Socket };
for (const name of ["dgram", "node:dgram"]) sandboxBuiltins.set(name, dgramModule);
export default dgramModule;
