// js-thrower: reads a member of `undefined` for one user in seven, so that
// each such event must become a dead letter carrying JavaScript's message and
// the line that threw, and the others flow on.

import { filter } from "weir";

export default filter(
  { name: "js-thrower", version: "0.1.0", reads: { user_id: "int" } },
  (event) => {
    const user = event.get("user_id");
    const seen = user % 7 === 0 ? undefined : { user };
    return seen.user >= 0;
  },
);
