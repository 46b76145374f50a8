// weir: write a Weir filter or enricher plugin as one plain function.
//
//   import { filter, Reject } from "weir";
//   export default filter({ name: "my-filter", reads: { action: "text?" } },
//     (event) => event.get("action") === "save");
//
// `sdk/js/build PLUGIN_DIR OUT.wasm` makes the WebAssembly component; the
// same module runs under node for tests (`weir/testing`). See README.md.

export { filter, enricher, Reject, RetryLater, ConfigError, log, lookup } from "./lib/runtime.js";
