// Outbound network as a run capability: with a policy the isolate's outbound requests go
// through the host's egress proxy (egress.ts), which applies it within the budget of the run
// tree (a top-level run and its children share one).
import type { PermissionPolicy } from "../../api/options.js";
import type { RuntimeLimits } from "../../api/types.js";
import type { RunCapability, RunContribution, RunFamily, RunSetup } from "../capability.js";
import { EgressBudget } from "./egress.js";

export class NetworkCapability implements RunCapability {
  readonly name = "network";
  private readonly budgets = new WeakMap<RunFamily, EgressBudget>();

  constructor(
    private readonly policy: PermissionPolicy | undefined,
    private readonly limits: Pick<RuntimeLimits, "egressConnections" | "egressBytes">,
  ) {}

  prepareRun(setup: RunSetup): RunContribution {
    if (this.policy === undefined) return {};
    let budget = this.budgets.get(setup.family);
    if (!budget) {
      budget = new EgressBudget(this.policy, this.limits.egressConnections, this.limits.egressBytes);
      this.budgets.set(setup.family, budget);
    }
    return { request: { networkPolicy: this.policy, egressBudget: budget } };
  }
}
