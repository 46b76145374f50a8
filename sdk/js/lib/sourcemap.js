// Stack frames of a component's bundle mapped back to the plugin's sources,
// through the source map the build appends to the bundle (`sources` relative
// to the plugin's folder, null for the SDK's own modules).

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/**
 * A function (file, line, col) -> `source:line:col` for frames of `map.file`,
 * or null for a frame to skip (another file, an SDK source, no mapping).
 * Lines and columns are 1-based, as in stacks. The mappings are decoded on
 * the first call.
 */
export function locator(map) {
  let lines = null;
  return (file, line, col) => {
    if (file !== map.file && !file.endsWith(`/${map.file}`)) return null;
    if (lines === null) lines = decode(map.mappings);
    const segs = lines[line - 1];
    if (segs === undefined || segs.length === 0) return null;
    // The last segment that starts at or before the column.
    let k = 0;
    for (let j = 4; j < segs.length && segs[j] <= col - 1; j += 4) k = j;
    const source = map.sources[segs[k + 1]];
    return source === null || source === undefined ? null : `${source}:${segs[k + 2] + 1}:${segs[k + 3] + 1}`;
  };
}

/** Source map mappings, per generated line: [genCol, source, line, col, ...] (0-based). */
export function decode(mappings) {
  const out = [];
  let source = 0;
  let oline = 0;
  let ocol = 0;
  for (const text of mappings.split(";")) {
    const segs = [];
    let gcol = 0;
    if (text !== "") {
      for (const seg of text.split(",")) {
        const v = vlq(seg);
        gcol += v[0];
        if (v.length >= 4) {
          source += v[1];
          oline += v[2];
          ocol += v[3];
          segs.push(gcol, source, oline, ocol);
        }
      }
    }
    out.push(segs);
  }
  return out;
}

function vlq(s) {
  const out = [];
  let value = 0;
  let shift = 0;
  for (let i = 0; i < s.length; i++) {
    const d = B64.indexOf(s[i]);
    value += (d & 31) * 2 ** shift;
    if (d & 32) {
      shift += 5;
    } else {
      out.push(value % 2 === 1 ? -(value - 1) / 2 : value / 2);
      value = 0;
      shift = 0;
    }
  }
  return out;
}
