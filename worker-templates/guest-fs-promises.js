// `node:fs/promises` for guests: the promise forms of the virtual filesystem.
import fs from "./secure-exec-fs.js";

export const { readFile, writeFile, readdir } = fs.promises;
export default fs.promises;
