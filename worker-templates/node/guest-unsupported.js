// What every refusal of an unsupported builtin says: the error names the API and why.
export function unsupported(api, why) {
  const error = new Error(`secure-exec: ${api} is not supported in the sandbox: ${why}`);
  error.code = "ERR_NOT_SUPPORTED";
  return error;
}

export function refusing(api, why) {
  return {
    [api.split(".").pop()]() {
      throw unsupported(api, why);
    },
  }[api.split(".").pop()];
}
