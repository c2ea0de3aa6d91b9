// Guest `node:child_process` as a run capability: `child-*` messages start and steer child
// guests of the same runtime, under the childProcess permission.
import type { PermissionPolicy } from "../../api/options.js";
import { isPermitted } from "../../api/options-core.js";
import type { RunCapability, RunContribution, RunSetup } from "../capability.js";
import type { ToolsCapability } from "../tools/index.js";
import { GuestChildProcesses, type ChildGuestStarter, type ScriptSource } from "./child-processes.js";

export interface ChildProcessCapabilityOptions {
  tools: ToolsCapability;
  policy: PermissionPolicy | undefined;
  /** Source of a script file in the runtime's filesystem, read under permissions.fs. */
  readScript: (path: string) => ScriptSource;
  startGuest: ChildGuestStarter;
}

export class ChildProcessCapability implements RunCapability {
  readonly name = "child-process";

  constructor(private readonly options: ChildProcessCapabilityOptions) {}

  prepareRun(setup: RunSetup): RunContribution {
    const { tools, policy, readScript, startGuest } = this.options;
    return {
      routes: (run) => {
        const children = new GuestChildProcesses({
          parent: run.control,
          cwd: setup.cwd,
          readScript,
          parentSignal: run.signal,
          depth: setup.depth,
          family: setup.family,
          tools: tools.gateway,
          toolScope: tools.scopeFor(run, setup.family),
          baseEnv: setup.env,
          isAllowed: (command) => isPermitted(policy, command, "allow"),
          startGuest,
        });
        return [
          {
            matches: (message) => typeof message.kind === "string" && message.kind.startsWith("child-"),
            handle: (message) => children.handle(message as Record<string, unknown>),
          },
        ];
      },
    };
  }
}
