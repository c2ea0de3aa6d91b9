// A capability is one thing a guest can be handed (tools, a filesystem, child processes,
// the network, servers). Each adds to a run before it starts and answers the run's guest
// messages on the host; NodeRuntime composes them in one list (runtime/node-runtime.ts).
import type { RunControl, RunRequest } from "../engine/run-executor.js";
import type { GuestHostMessage, HostMessageHandler } from "../engine/host-router.js";

/**
 * What a top-level run and all its child guests share: their limits are counted once for
 * the whole tree, so children cannot multiply them.
 */
export interface RunFamily {
  toolCalls: { calls: number; inFlight: number };
  children: number;
}

export function newRunFamily(): RunFamily {
  return { toolCalls: { calls: 0, inFlight: 0 }, children: 0 };
}

/** One run as capabilities see it while it is set up. */
export interface RunSetup {
  /** Sandbox builtins the guest and its packages import. */
  readonly sandboxModules: ReadonlySet<string>;
  readonly cwd: string;
  /** The environment the guest sees (after the env permission). */
  readonly env: Record<string, string>;
  /** 0 for a caller's run; n for a child guest n levels down. */
  readonly depth: number;
  /** `pid` of a spawned guest; 0 otherwise. */
  readonly pid: number;
  /** The run's handle: messages to its isolate wait for its start. */
  readonly control: RunControl;
  /** The run tree it belongs to. */
  readonly family: RunFamily;
}

/** The run once it exists: its id, its end, and a handle on its isolate. */
export interface LiveRun {
  readonly runId: string;
  /** Aborted when the run ends. */
  readonly signal: AbortSignal;
  readonly control: RunControl;
}

/** Guest messages a capability answers. */
export interface GuestMessageRoute {
  matches(message: GuestHostMessage): boolean;
  handle: HostMessageHandler;
}

/** Settings of the run request that capabilities fill. */
export type CapabilityRunFields = Pick<RunRequest, "fs" | "networkPolicy" | "egressBudget" | "onListenerChange">;

/** What a capability adds to one run. */
export interface RunContribution {
  request?: Partial<CapabilityRunFields>;
  /** The guest messages it answers, once the run exists. */
  routes?(run: LiveRun): GuestMessageRoute[];
}

export interface RunCapability {
  readonly name: string;
  prepareRun(setup: RunSetup): RunContribution | Promise<RunContribution>;
}

/** Sets up a run with every capability: the request fields, and one handler for its messages. */
export async function prepareCapabilities(
  capabilities: readonly RunCapability[],
  setup: RunSetup,
): Promise<{ request: Partial<CapabilityRunFields>; onHostMessage: (run: LiveRun) => HostMessageHandler }> {
  const contributions = await Promise.all(capabilities.map((capability) => capability.prepareRun(setup)));
  return {
    request: Object.assign({}, ...contributions.map((contribution) => contribution.request ?? {})) as Partial<CapabilityRunFields>,
    onHostMessage: (run) => {
      const routes = contributions.flatMap((contribution) => contribution.routes?.(run) ?? []);
      return async (message) => {
        const route = routes.find((candidate) => candidate.matches(message));
        return route ? route.handle(message) : { ok: false, error: "this host call is not available to this run" };
      };
    },
  };
}
