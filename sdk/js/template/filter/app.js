// {{name}}: a Weir filter. It keeps events whose `action` is one of the
// configured actions (step config: `actions = "save,closeup"`).

import { filter } from "weir";

export default filter(
  {
    name: "{{name}}",
    version: "0.1.0",
    // The fields it reads, with their types (`?`: may be null); `weir check`
    // matches them against the pipeline's fields.
    reads: { action: "text" },
    // The step's configuration keys and their defaults (a list: comma separated).
    config: { actions: ["save"] },
    // Once per instance: what the function gets as its second argument.
    init: ({ actions }) => new Set(actions),
  },
  // true: keep; false: drop; `throw new Reject(reason)`: a dead letter.
  (event, actions) => {
    const action = event.get("action");
    return action !== null && actions.has(action);
  },
);
