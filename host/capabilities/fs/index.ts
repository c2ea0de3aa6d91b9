// The virtual filesystem as a run capability: a run whose code uses `fs` gets a snapshot,
// and its changes come back just before its exit.
import { usesVirtualFs } from "../../compile/guest-module.js";
import type { RunCapability, RunContribution, RunSetup } from "../capability.js";
import type { FsChanges, VirtualFs } from "./virtual-fs.js";

export class FilesystemCapability implements RunCapability {
  readonly name = "fs";

  constructor(private readonly vfs: VirtualFs) {}

  async prepareRun(setup: RunSetup): Promise<RunContribution> {
    if (!usesVirtualFs(setup.sandboxModules)) return {};
    return { request: { fs: { snapshot: await this.vfs.snapshot(), onChanges: (changes) => this.vfs.apply(changes as FsChanges) } } };
  }
}
