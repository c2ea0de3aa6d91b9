// Outbound network as a run capability: with a policy that is not "deny" the isolate's
// outbound requests go through the host's egress proxy (egress.ts), which applies it.
import type { PermissionPolicy } from "../../api/options.js";
import type { RunCapability, RunContribution } from "../capability.js";

export class NetworkCapability implements RunCapability {
  readonly name = "network";

  constructor(private readonly policy: PermissionPolicy | undefined) {}

  prepareRun(): RunContribution {
    return this.policy === undefined ? {} : { request: { networkPolicy: this.policy } };
  }
}
