// `node:fs/promises` for guests: the promise forms of the virtual filesystem.
import { promises, FileHandle } from "./secure-exec-fs.js";

export const {
  constants,
  access,
  appendFile,
  chmod,
  chown,
  copyFile,
  cp,
  lchmod,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  mkdtemp,
  open,
  opendir,
  readdir,
  readFile,
  readlink,
  realpath,
  rename,
  rm,
  rmdir,
  stat,
  statfs,
  symlink,
  truncate,
  unlink,
  utimes,
  watch,
  glob,
  writeFile,
} = promises;
export { FileHandle };
export default promises;
