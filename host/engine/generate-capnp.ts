// `npm run gen:capnp`: writes config.capnp from the cell definition.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../package-files.js";
import { renderReferenceCapnp } from "./cell-definition.js";

const target = join(packageRoot, "config.capnp");
writeFileSync(target, renderReferenceCapnp());
console.log(`wrote ${target}`);
