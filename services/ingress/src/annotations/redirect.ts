/**
 * permanent-redirect (301, or permanent-redirect-code), temporal-redirect (302, or
 * temporal-redirect-code) and app-root (302 from `/`): nginx `return` directives that run in the
 * rewrite phase, before the https redirect and before proxying.
 */
import { type AnnotationMap, AnnotationError, get, parseInteger } from "./common.ts";

export interface Redirects {
  permanent?: { url: string; code: number };
  temporal?: { url: string; code: number };
  appRoot?: string;
}

function url(a: AnnotationMap, name: string): string | undefined {
  const v = get(a, name);
  if (v === undefined || v === "") return undefined;
  if (!/^(https?:\/\/[^\s"';{}]+|\/[^\s"';{}]*)$/.test(v))
    throw new AnnotationError(name, `'${v}' is not an http(s) URL or an absolute path`);
  return v;
}

function code(a: AnnotationMap, name: string, dflt: number): number {
  const c = parseInteger(a, name, dflt, 300, 308);
  if (c === 305 || c === 306) throw new AnnotationError(name, `${c} is not a redirect code`);
  return c;
}

export function parse(a: AnnotationMap): Redirects {
  const out: Redirects = {};
  const permanent = url(a, "permanent-redirect");
  if (permanent) out.permanent = { url: permanent, code: code(a, "permanent-redirect-code", 301) };
  const temporal = url(a, "temporal-redirect");
  if (temporal) out.temporal = { url: temporal, code: code(a, "temporal-redirect-code", 302) };
  const appRoot = get(a, "app-root");
  if (appRoot) {
    if (!/^\/[^\s"';{}]*$/.test(appRoot))
      throw new AnnotationError("app-root", `'${appRoot}' must be an absolute path like /app`);
    out.appRoot = appRoot;
  }
  return out;
}

/** The redirect for this request, if an annotation asks for one. */
export function decide(
  r: Redirects,
  req: { scheme: string; hostHeader: string; uri: string },
): { status: number; url: string } | undefined {
  if (r.appRoot && req.uri === "/")
    return { status: 302, url: `${req.scheme}://${req.hostHeader}${r.appRoot}` };
  if (r.permanent) return { status: r.permanent.code, url: r.permanent.url };
  if (r.temporal) return { status: r.temporal.code, url: r.temporal.url };
  return undefined;
}
