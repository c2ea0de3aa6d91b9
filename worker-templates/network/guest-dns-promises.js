// `node:dns/promises` for guests: the promise forms of the sandbox's dns.
import { promises } from "./secure-exec-dns.js";

export const { lookup, resolve, resolve4, resolve6, resolveAny, resolveCname, resolveMx, resolveNs, resolveTxt, resolveSrv, resolvePtr, resolveNaptr, resolveSoa, reverse, Resolver, setServers, getServers, setDefaultResultOrder, getDefaultResultOrder, lookupService } = promises;
export default promises;
