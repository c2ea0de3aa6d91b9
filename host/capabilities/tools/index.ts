// Tools as a run capability: the guest's `callHostTool` messages reach the gateway with the
// run's scope (its counters, its end, the tool permission).
import type { PermissionPolicy } from "../../api/options.js";
import { isPermitted } from "../../api/options-core.js";
import type { LiveRun, RunCapability, RunContribution, RunFamily, RunSetup } from "../capability.js";
import type { ToolCallScope, ToolGateway } from "./tool-gateway.js";

export class ToolsCapability implements RunCapability {
  readonly name = "tools";
  private readonly scopes = new WeakMap<LiveRun, ToolCallScope>();

  constructor(
    readonly gateway: ToolGateway,
    private readonly tenant: string,
    private readonly policy: PermissionPolicy | undefined,
  ) {}

  /** The scope every tool call of one run shares, its tool commands included; counted per run tree. */
  scopeFor(run: LiveRun, family: RunFamily): ToolCallScope {
    let scope = this.scopes.get(run);
    if (!scope) {
      scope = {
        runId: run.runId,
        tenant: this.tenant,
        signal: run.signal,
        // Counted for the top-level run and all its children together.
        counters: family.toolCalls,
        isAllowed: (name: string) => isPermitted(this.policy, name, "allow"),
      };
      this.scopes.set(run, scope);
    }
    return scope;
  }

  prepareRun(setup: RunSetup): RunContribution {
    return {
      routes: (run) => [
        {
          matches: (message) => message.kind === "tool" || message.kind === undefined,
          handle: (message) => this.gateway.call(message.name, message.input, this.scopeFor(run, setup.family)),
        },
      ],
    };
  }
}
