// A module resolution hook for node (installed by ../register.js): `weir`
// and `weir/...` resolve to this SDK, as if the plugin had it installed.

const SELF = new URL("../package.json", import.meta.url).href;

export async function resolve(specifier, context, next) {
  if (specifier === "weir" || specifier.startsWith("weir/")) {
    // Resolved from inside the package: a self-reference through its "exports".
    return next(specifier, { ...context, parentURL: SELF });
  }
  return next(specifier, context);
}
