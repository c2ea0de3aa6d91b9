// The runtime's virtual filesystem, kept on the host. Each run that uses `node:fs` gets a
// snapshot; what it writes comes back and later runs see it.
export interface FsSnapshot {
  files: Record<string, string>;
}

export interface FsChanges {
  writes?: Record<string, string>;
  deletes?: string[];
}

export class VirtualFs {
  private readonly files = new Map<string, Uint8Array>();

  constructor(seed: Record<string, string | Uint8Array> = {}) {
    for (const [path, data] of Object.entries(seed)) this.writeFile(path, data);
  }

  snapshot(): FsSnapshot {
    const files: Record<string, string> = {};
    for (const [path, bytes] of this.files) files[path] = Buffer.from(bytes).toString("base64");
    return { files };
  }

  apply(changes: FsChanges): void {
    for (const path of changes.deletes ?? []) this.files.delete(path);
    for (const [path, base64] of Object.entries(changes.writes ?? {})) this.files.set(path, Buffer.from(base64, "base64"));
  }

  writeFile(path: string, data: string | Uint8Array): void {
    this.files.set(path, typeof data === "string" ? Buffer.from(data) : Uint8Array.from(data));
  }

  readFile(path: string): Uint8Array {
    const bytes = this.files.get(path);
    if (!bytes) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: "ENOENT" });
    return bytes;
  }

  readDir(path: string): string[] {
    const prefix = path.endsWith("/") ? path : `${path}/`;
    const names = new Set<string>();
    for (const file of this.files.keys()) if (file.startsWith(prefix)) names.add(file.slice(prefix.length).split("/")[0]!);
    return [...names].sort();
  }
}
