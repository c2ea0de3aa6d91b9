import type { SupervisorBindings } from "./edge/edge-bindings.js";

declare const supervisor: {
  fetch(request: Request, env: SupervisorBindings): Promise<Response>;
};
export default supervisor;
