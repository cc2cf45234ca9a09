/**
 * Paths as ingress-nginx turns them into nginx locations, and nginx's location selection.
 *
 * - Exact `/foo`                  → `location = /foo`
 * - Prefix `/foo`                 → `location /foo/` plus `location = /foo` (unless an Exact `/foo` exists)
 * - Prefix `/`                    → `location /`
 * - ImplementationSpecific `/foo` → `location /foo` (a raw string prefix: it matches `/foobar`)
 * - regex mode (any use-regex or rewrite-target on the host): every location, Exact included,
 *   becomes `location ~* "^<path>"`, ordered by path length descending; the first match wins.
 */
import type { PathType } from "@klab/api";

export type LocationMatcher =
  | { kind: "exact"; path: string }
  | { kind: "prefix"; path: string }
  | { kind: "regex"; source: string; regex: RegExp };

/** The nginx location string, as `nginx -T` would show it (for logs and debugging). */
export function describeMatcher(m: LocationMatcher): string {
  if (m.kind === "exact") return `= ${m.path}`;
  if (m.kind === "prefix") return m.path;
  return `~* "${m.source}"`;
}

export interface PathEntry {
  path: string;
  pathType: PathType;
}

/** Exact and Prefix paths must be absolute; with strict-validate-path-type (default on in v1.15) only [A-Za-z0-9/_-]. */
export function validatePath(p: PathEntry, strict: boolean): string | undefined {
  if (p.pathType !== "Exact" && p.pathType !== "Prefix" && p.pathType !== "ImplementationSpecific")
    return `pathType '${String(p.pathType)}' is not one of Exact, Prefix, ImplementationSpecific`;
  if (!p.path.startsWith("/")) return `path '${p.path}' must be absolute (start with '/')`;
  if (strict && p.pathType !== "ImplementationSpecific" && !/^[A-Za-z0-9/_-]*$/.test(p.path))
    return `path '${p.path}' cannot be used with pathType ${p.pathType}: only letters, digits, '/', '_' and '-' are allowed (use ImplementationSpecific for regular expressions)`;
  return undefined;
}

/**
 * The nginx locations one Ingress path expands to (before regex mode is decided).
 * `exactPaths` holds the Exact paths of the whole server: a Prefix then skips its own exact twin.
 */
export function expandPath(
  p: PathEntry,
  exactPaths: ReadonlySet<string>,
): Array<{ path: string; exact: boolean }> {
  if (p.pathType === "Exact") return [{ path: p.path, exact: true }];
  if (p.pathType === "ImplementationSpecific" || p.path === "/") return [{ path: p.path, exact: false }];
  const base = p.path.endsWith("/") ? p.path.slice(0, -1) : p.path;
  const out = [{ path: base + "/", exact: false }];
  if (!exactPaths.has(base)) out.push({ path: base, exact: true });
  return out;
}

/** Compile one location; a regex that does not compile comes back as an error string. */
export function compileMatcher(path: string, exact: boolean, regexMode: boolean): LocationMatcher | string {
  if (!regexMode) return exact ? { kind: "exact", path } : { kind: "prefix", path };
  const source = "^" + path;
  try {
    return { kind: "regex", source, regex: new RegExp(pcreToJs(source), "i") };
  } catch (err) {
    return `path '${path}' is not a valid regular expression: ${(err as Error).message}`;
  }
}

/** The few PCRE spellings that differ in JavaScript. */
export function pcreToJs(source: string): string {
  // PCRE named groups (?P<name>…) are (?<name>…) in JavaScript.
  return source.replace(/\(\?P</g, "(?<");
}

export interface HasMatcher {
  matcher: LocationMatcher;
}

/**
 * nginx's location choice: `=` exact wins outright; otherwise the longest matching prefix; regex
 * locations are tried in order and win over a prefix (no `^~` is ever generated). Returns the
 * chosen location and, for a regex, its match (for rewrite-target's captures).
 */
export function selectLocation<L extends HasMatcher>(
  locations: readonly L[],
  uri: string,
): { location: L; match?: RegExpExecArray } | undefined {
  let best: L | undefined;
  let bestLen = -1;
  for (const loc of locations) {
    const m = loc.matcher;
    if (m.kind === "exact") {
      if (m.path === uri) return { location: loc };
    } else if (m.kind === "prefix") {
      if (m.path.length > bestLen && uri.startsWith(m.path)) {
        best = loc;
        bestLen = m.path.length;
      }
    }
  }
  for (const loc of locations) {
    const m = loc.matcher;
    if (m.kind !== "regex") continue;
    m.regex.lastIndex = 0;
    const match = m.regex.exec(uri);
    if (match) return { location: loc, match };
  }
  return best ? { location: best } : undefined;
}

/**
 * nginx's `$uri`: the path percent-decoded, `//` merged, `.` and `..` resolved. `undefined` for a
 * path nginx rejects with 400 (escaping above the root, a NUL byte, bad escapes are kept literal).
 */
export function normalizeUri(rawPath: string): string | undefined {
  if (!rawPath.startsWith("/")) return undefined;
  // Most paths need no work: no escapes, no empty or dot segments.
  if (!/%|\/\/|\/\.|\0/.test(rawPath)) return rawPath;
  let decoded = "";
  for (let i = 0; i < rawPath.length; i++) {
    const c = rawPath[i];
    if (c === "%" && /^[0-9a-fA-F]{2}$/.test(rawPath.slice(i + 1, i + 3))) {
      decoded += String.fromCharCode(parseInt(rawPath.slice(i + 1, i + 3), 16));
      i += 2;
    } else decoded += c;
  }
  // Bytes decoded above are Latin-1 code units; re-read them as UTF-8 where they form valid text.
  try {
    decoded = Buffer.from(decoded, "latin1").toString("utf8");
  } catch {
    /* keep the byte string */
  }
  if (decoded.includes("\0")) return undefined;
  const out: string[] = [];
  const segments = decoded.split("/");
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i];
    const last = i === segments.length - 1;
    if (s === "" && !last) continue;
    if (s === ".") {
      if (last) out.push("");
      continue;
    }
    if (s === "..") {
      if (out.length === 0) return undefined;
      out.pop();
      if (last) out.push("");
      continue;
    }
    out.push(s);
  }
  return "/" + out.join("/");
}

/** Split a request-target into its path and its query (without '?'). */
export function splitTarget(target: string): { path: string; query: string | undefined } {
  const q = target.indexOf("?");
  return q === -1
    ? { path: target, query: undefined }
    : { path: target.slice(0, q), query: target.slice(q + 1) };
}
