/**
 * limit-rps: requests per second per client address, with burst = rps × limit-burst-multiplier (5)
 * and `nodelay`; an excess request gets 503 (limit-req-status-code). The bucket arithmetic is
 * nginx's limit_req (excess in thousandths of a request, leaking at `rate` per second).
 */
import { type AnnotationMap, get, AnnotationError, parseInteger } from "./common.ts";

export interface RateLimit {
  rps: number;
  burst: number;
}

export function parse(a: AnnotationMap): RateLimit | undefined {
  const v = get(a, "limit-rps");
  if (v === undefined || v === "" || v === "0") return undefined;
  if (!/^\d+$/.test(v))
    throw new AnnotationError("limit-rps", `'${v}' is not a whole number of requests per second`);
  const rps = Number(v);
  const multiplier = parseInteger(a, "limit-burst-multiplier", 5, 1);
  return { rps, burst: rps * multiplier };
}

export interface BucketState {
  /** thousandths of a request above the rate */
  excess: number;
  lastMs: number;
}

/** One request arriving at `nowMs`: whether it passes, and the bucket after it. */
export function admit(
  state: BucketState | undefined,
  nowMs: number,
  limit: RateLimit,
): { ok: boolean; state: BucketState } {
  if (!state) return { ok: true, state: { excess: 0, lastMs: nowMs } };
  const elapsed = Math.max(0, nowMs - state.lastMs);
  const excess = Math.max(0, state.excess - limit.rps * elapsed + 1000);
  if (excess > limit.burst * 1000) return { ok: false, state };
  return { ok: true, state: { excess, lastMs: nowMs } };
}
