/** proxy-body-size (nginx client_max_body_size, default 1m; 0 = unlimited): larger bodies get 413. */
import { type AnnotationMap, AnnotationError, get } from "./common.ts";

export const DEFAULT_PROXY_BODY_SIZE = "1m";

/** nginx size syntax: bytes, or k/K, m/M, g/G suffixes. */
export function parseSize(v: string): number | undefined {
  const m = /^(\d+)([kKmMgG]?)$/.exec(v.trim());
  if (!m) return undefined;
  const mult = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase() as "" | "k" | "m" | "g"];
  return Number(m[1]) * mult;
}

/** Bytes allowed; 0 means no limit. */
export function parse(a: AnnotationMap, dflt = DEFAULT_PROXY_BODY_SIZE): number {
  const v = get(a, "proxy-body-size") ?? dflt;
  const n = parseSize(v);
  if (n === undefined) throw new AnnotationError("proxy-body-size", `'${v}' is not a size (like 8k, 1m, 0)`);
  return n;
}

export function tooLarge(limit: number, contentLength: number): boolean {
  return limit > 0 && contentLength > limit;
}
