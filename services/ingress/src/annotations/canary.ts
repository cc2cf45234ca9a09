/**
 * canary: an Ingress marked `canary: "true"` adds an alternative backend to the main Ingress's
 * location with the same host and path. Precedence as ingress-nginx's balancer.lua:
 * header → cookie → weight.
 */
import { type AnnotationMap, AnnotationError, get, parseBool, parseInteger } from "./common.ts";
import { pcreToJs } from "../paths.ts";

export interface Canary {
  byHeader?: string;
  byHeaderValue?: string;
  /** the compiled pattern, or null when it does not compile (never matches) */
  byHeaderPattern?: RegExp | null;
  byCookie?: string;
  weight: number;
  weightTotal: number;
}

/** undefined when the Ingress is not a canary. */
export function parse(a: AnnotationMap): Canary | undefined {
  if (!parseBool(a, "canary", false)) return undefined;
  const byHeader = get(a, "canary-by-header") || undefined;
  const byHeaderValue = get(a, "canary-by-header-value") || undefined;
  const pattern = get(a, "canary-by-header-pattern") || undefined;
  let byHeaderPattern: RegExp | null | undefined;
  if (pattern !== undefined) {
    try {
      byHeaderPattern = new RegExp(pcreToJs(pattern));
    } catch {
      byHeaderPattern = null;
    }
  }
  const weightTotal = parseInteger(a, "canary-weight-total", 100, 1);
  const weight = parseInteger(a, "canary-weight", 0, 0);
  if (weight > Math.max(weightTotal, 100) && weightTotal > 100)
    throw new AnnotationError("canary-weight", `${weight} is more than canary-weight-total ${weightTotal}`);
  return {
    byHeader,
    byHeaderValue,
    byHeaderPattern,
    byCookie: get(a, "canary-by-cookie") || undefined,
    weight,
    weightTotal,
  };
}

/**
 * Whether this request goes to the canary. `random` is uniform in [0, 1) and stands for Lua's
 * math.random(total), which gives 1..total.
 */
export function routeToCanary(
  c: Canary,
  headers: Readonly<Record<string, string | string[] | undefined>>,
  cookies: ReadonlyMap<string, string>,
  random: number,
): boolean {
  if (c.byHeader) {
    const raw = headers[c.byHeader.toLowerCase()];
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (value !== undefined) {
      if (c.byHeaderValue) {
        if (value === c.byHeaderValue) return true;
      } else if (c.byHeaderPattern !== undefined) {
        if (c.byHeaderPattern === null) return false;
        if (c.byHeaderPattern.test(value)) return true;
      } else if (value === "always") return true;
      else if (value === "never") return false;
    }
  }
  if (c.byCookie) {
    const value = cookies.get(c.byCookie);
    if (value === "always") return true;
    if (value === "never") return false;
  }
  const total = c.weightTotal > 100 ? c.weightTotal : 100;
  const draw = Math.floor(random * total) + 1;
  return draw <= c.weight;
}
