import os from "node:os";
const who = process.env.WHO ?? "world";
await new Promise((resolve) => setTimeout(resolve, 10));
console.log(`hello ${who} from ${os.platform()} in ${process.cwd()}`);
__return({ greeted: who });
