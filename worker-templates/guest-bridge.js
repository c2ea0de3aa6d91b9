// Shared by the prelude and the guest's sandbox builtins (child_process, http), which
// load only when a guest imports them. One isolate serves one run, so this is that run's.
export const deliveryHandlers = new Map();

/** Guest HTTP servers by port: (request message) → Promise<reply>, reached by `rt.fetch`. */
export const httpServers = new Map();

/** Sandbox builtins loaded in this isolate, by name, for `process.getBuiltinModule`. */
export const sandboxBuiltins = new Map();

export const bridge = {
  /** Set by the prelude when the run starts: host calls, events, liveness holds. */
  current: undefined,
  /** The run's virtual filesystem snapshot (`input.fs`), when the host shipped one. */
  fsSnapshot: undefined,
  /** Set by the fs module once used: the changes to hand back to the host at the end. */
  fsChanges: undefined,
};
