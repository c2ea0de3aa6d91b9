// Shared by the prelude and the guest's sandbox builtins (child_process, http), which
// load only when a guest imports them. One isolate serves one run, so this is that run's.
export const deliveryHandlers = new Map();

export const bridge = {
  /** Set by the prelude when the run starts: host calls, events, liveness holds. */
  current: undefined,
};
