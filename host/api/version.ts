/** Version of the HTTP API and CLI (its own module, so the CLI starts without the HTTP stack). */
export const API_VERSION = "0.1.0";
