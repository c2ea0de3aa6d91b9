// `node:readline/promises` for guests: the promise forms of the sandbox's readline.
import { promises } from "./secure-exec-readline.js";

export const { Interface, Readline, createInterface } = promises;
export default promises;
