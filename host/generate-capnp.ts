// `npm run gen:capnp`: writes config.capnp from the cell definition.
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { renderReferenceCapnp } from "./cell-definition.js";

const target = fileURLToPath(new URL(import.meta.url.includes("/dist/") ? "../../config.capnp" : "../config.capnp", import.meta.url));
writeFileSync(target, renderReferenceCapnp());
console.log(`wrote ${target}`);
