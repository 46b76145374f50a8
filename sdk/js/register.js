// `node --import <sdk/js>/register.js --test`: makes `weir` and `weir/testing`
// resolve to this SDK without installing it (see README.md, "Native tests").

import { register } from "node:module";

register("./lib/resolve-hook.js", import.meta.url);
