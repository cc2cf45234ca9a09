/**
 * rewrite-target: the upstream URI becomes the target with `$1..$9` (and `${name}`) replaced by the
 * captures of the location's regex; like `rewrite "(?i)<path>" <target> break;`.
 */
import { type AnnotationMap, AnnotationError, get } from "./common.ts";
import { pcreToJs } from "../paths.ts";

export function parse(a: AnnotationMap): string | undefined {
  const v = get(a, "rewrite-target");
  if (v === undefined || v === "") return undefined;
  if (/[\s;{}]/.test(v))
    throw new AnnotationError("rewrite-target", `'${v}' must not contain spaces, ';' or braces`);
  return v;
}

/** Apply the target to `uri` matched (unanchored, case-insensitive) by the location path. */
export function rewrite(path: string, target: string, uri: string): string {
  let re: RegExp;
  try {
    re = new RegExp(pcreToJs(path), "i");
  } catch {
    return uri;
  }
  const m = re.exec(uri);
  if (!m) return uri;
  const substituted = target.replace(
    /\$(\d)|\$\{(\w+)\}/g,
    (_all, digit: string | undefined, name: string | undefined) => {
      if (digit !== undefined) return m[Number(digit)] ?? "";
      return (name !== undefined && /^\d+$/.test(name) ? m[Number(name)] : m.groups?.[name ?? ""]) ?? "";
    },
  );
  // nginx's `rewrite` replaces the whole URI with the replacement (not only the matched part).
  return substituted;
}
