// A runtime's npm packages for guests: `import "pkg"` resolved from its `nodeModules` and
// bundled once per specifier, then shipped beside every guest that imports it.
import { GUEST_MODULE_NAME } from "./guest-module.js";
import { NodeModulesBundler, type BundledModule } from "./node-modules.js";
import { ModuleNotFoundError } from "./specifiers.js";

interface BundledPackage {
  modules: Record<string, BundledModule>;
  entry: string;
  sandboxModules: Set<string>;
}

export class GuestPackages {
  private bundler: NodeModulesBundler | undefined;
  private readonly bundled = new Map<string, BundledPackage>();

  /** `nodeModules`: the host directory packages come from (none: every package import fails). */
  constructor(
    private readonly nodeModulesDir: string | undefined,
    private readonly cwd: string,
  ) {}

  /**
   * Module name for a guest's `import "pkg"`, adding the package's modules to `into` and the
   * sandbox builtins they import to `sandboxModules`.
   */
  resolve(specifier: string, into: Record<string, BundledModule>, sandboxModules: Set<string>): string {
    const importer = `file://${this.cwd}/${GUEST_MODULE_NAME}`;
    if (this.nodeModulesDir === undefined) throw new ModuleNotFoundError(specifier, importer);
    let bundled = this.bundled.get(specifier);
    if (!bundled) {
      this.bundler ??= new NodeModulesBundler(this.nodeModulesDir);
      const bundle = this.bundler.bundle([specifier], importer);
      bundled = { modules: bundle.modules, entry: bundle.entries.get(specifier)!, sandboxModules: bundle.sandboxModules };
      this.bundled.set(specifier, bundled);
    }
    Object.assign(into, bundled.modules);
    for (const name of bundled.sandboxModules) sandboxModules.add(name);
    return bundled.entry;
  }
}
