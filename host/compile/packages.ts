// A runtime's npm packages for guests: `import "pkg"` resolved from its `nodeModules` and
// bundled on worker threads (package-bundles.ts), cached per runtime, then shipped beside
// every guest that imports it.
import { compileGuest } from "./guest-compiler.js";
import { GUEST_MODULE_NAME } from "./guest-module.js";
import { NodeModulesBundler, type BundledModule, type PackageBundle } from "./node-modules.js";
import { PackageBundleError, PackageBundles } from "./package-bundles.js";
import { isBareSpecifier, ModuleNotFoundError, PackageLoadError } from "./specifiers.js";

/** Compiled guests that import no package, by language and source (repeated code skips the parse). */
const COMPILED_ENTRIES = 64;
const COMPILED_SOURCE_CHARS = 16 * 1024;

export class GuestPackages {
  private bundles: PackageBundles | undefined;
  private readonly compiled = new Map<string, string>();

  /** `nodeModulesDir`: the host directory packages come from (none: every package import fails). */
  constructor(
    private readonly nodeModulesDir: string | undefined,
    private readonly cwd: string,
    /** The runtime's turn in the shared compiler and bundler queues. */
    private readonly queue: string,
  ) {}

  /** Bundles cached for guests' imports. */
  usage(): { count: number; bytes: number } {
    const usage = this.bundles?.usage();
    return { count: usage?.bundles ?? 0, bytes: usage?.bytes ?? 0 };
  }

  /**
   * Compiles the guest with its packages, adding their modules to `extraModules` and the
   * sandbox builtins they import to `sandboxModules`. Specifiers not cached yet are resolved
   * and bundled off the event loop between two compiles (the first only collects them).
   */
  async compile(
    code: string,
    language: "js" | "ts",
    signal: AbortSignal,
    extraModules: Record<string, BundledModule>,
    sandboxModules: Set<string>,
  ): Promise<string> {
    const cacheKey = code.length <= COMPILED_SOURCE_CHARS ? `${language}:${code}` : undefined;
    const cached = cacheKey === undefined ? undefined : this.compiled.get(cacheKey);
    if (cached !== undefined) {
      this.compiled.delete(cacheKey!);
      this.compiled.set(cacheKey!, cached);
      return cached;
    }
    const importer = `file://${this.cwd}/${GUEST_MODULE_NAME}`;
    let importsPackages = false;
    const bundles = new Map<string, PackageBundle>();
    const missing = new Set<string>();
    /** Packages that could not be loaded: the guest's `import()` of one rejects with it. */
    const failures = new Map<string, Error>();
    const resolveBare = (specifier: string): string | undefined => {
      if (!isBareSpecifier(specifier)) return undefined;
      importsPackages = true;
      const packages = this.packageBundles();
      if (!packages) throw new ModuleNotFoundError(specifier, importer);
      const failure = failures.get(specifier);
      if (failure) throw failure instanceof ModuleNotFoundError ? failure : new PackageLoadError(specifier, failure);
      const bundle = bundles.get(specifier) ?? packages.cached(specifier);
      if (!bundle) {
        missing.add(specifier);
        return undefined;
      }
      bundles.set(specifier, bundle);
      return bundle.entry;
    };
    const compile = () => compileGuest(code, { language, resolveBare, queue: this.queue, signal });
    let guestModule = await compile();
    if (missing.size > 0) {
      // A failure fails the run only where a static import needs it (the second compile throws it).
      const loaded = await this.packageBundles()!.settle([...missing], importer, signal);
      for (const [specifier, bundle] of loaded) {
        if (bundle instanceof Error) failures.set(specifier, bundle);
        else bundles.set(specifier, bundle);
      }
      missing.clear();
      guestModule = await compile();
      if (missing.size > 0) throw new PackageBundleError(`secure-exec: package "${[...missing][0]}" was bundled but not resolved; try again`);
    }
    for (const bundle of new Set(bundles.values())) {
      Object.assign(extraModules, bundle.modules);
      for (const name of bundle.sandboxModules) sandboxModules.add(name);
    }
    // With packages the result depends on their bundles, which may change: only the rest is kept.
    if (cacheKey !== undefined && !importsPackages) {
      this.compiled.set(cacheKey, guestModule);
      if (this.compiled.size > COMPILED_ENTRIES) this.compiled.delete(this.compiled.keys().next().value!);
    }
    return guestModule;
  }

  /** The runtime's package cache, created on the first import of a package. */
  private packageBundles(): PackageBundles | undefined {
    if (this.nodeModulesDir === undefined) return undefined;
    this.bundles ??= new PackageBundles(new NodeModulesBundler(this.nodeModulesDir).realRoot, this.queue);
    return this.bundles;
  }
}

export { PackageBundleError } from "./package-bundles.js";
