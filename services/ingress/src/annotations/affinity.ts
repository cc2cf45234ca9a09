/**
 * affinity: cookie — sticky sessions as ingress-nginx's sticky balancer: the cookie
 * (session-cookie-name, default INGRESSCOOKIE) carries `<key>|<backend key>`; the key picks an
 * endpoint by consistent hashing, the backend key ties the cookie to one upstream.
 */
import { createHash } from "node:crypto";
import { type AnnotationMap, AnnotationError, get } from "./common.ts";

export interface Affinity {
  cookieName: string;
  /** undefined: the location's path */
  path?: string;
  maxAgeSeconds?: number;
  expiresSeconds?: number;
  sameSite?: "None" | "Lax" | "Strict";
  mode: "balanced" | "persistent";
}

export function parse(a: AnnotationMap): Affinity | undefined {
  const kind = get(a, "affinity");
  if (kind === undefined || kind === "") return undefined;
  if (kind !== "cookie") throw new AnnotationError("affinity", `'${kind}' is not supported (only "cookie")`);
  const num = (name: string): number | undefined => {
    const v = get(a, name);
    if (v === undefined || v === "") return undefined;
    if (!/^\d+$/.test(v)) throw new AnnotationError(name, `'${v}' is not a whole number of seconds`);
    return Number(v);
  };
  const sameSiteRaw = get(a, "session-cookie-samesite");
  let sameSite: Affinity["sameSite"];
  if (sameSiteRaw) {
    const s = sameSiteRaw[0].toUpperCase() + sameSiteRaw.slice(1).toLowerCase();
    if (s !== "None" && s !== "Lax" && s !== "Strict")
      throw new AnnotationError("session-cookie-samesite", `'${sameSiteRaw}' is not None, Lax or Strict`);
    sameSite = s;
  }
  const mode = get(a, "affinity-mode") || "balanced";
  if (mode !== "balanced" && mode !== "persistent")
    throw new AnnotationError("affinity-mode", `'${mode}' is not balanced or persistent`);
  const name = get(a, "session-cookie-name") || "INGRESSCOOKIE";
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name))
    throw new AnnotationError("session-cookie-name", `'${name}' is not a valid cookie name`);
  return {
    cookieName: name,
    path: get(a, "session-cookie-path") || undefined,
    maxAgeSeconds: num("session-cookie-max-age"),
    expiresSeconds: num("session-cookie-expires"),
    sameSite,
    mode,
  };
}

const md5 = (s: string): string => createHash("md5").update(s).digest("hex");

/** The part of the cookie that names the upstream, as md5(md5(name) .. name). */
export function backendKey(upstreamName: string): string {
  return md5(md5(upstreamName) + upstreamName);
}

/** The cookie's key when it belongs to `upstreamName`, else undefined. */
export function keyFromCookie(value: string | undefined, upstreamName: string): string | undefined {
  if (!value) return undefined;
  const bar = value.indexOf("|");
  if (bar === -1) return undefined;
  return value.slice(bar + 1) === backendKey(upstreamName) ? value.slice(0, bar) : undefined;
}

export function cookieBelongsTo(value: string | undefined, upstreamName: string): boolean {
  return keyFromCookie(value, upstreamName) !== undefined;
}

/** Rendezvous hashing: the same key picks the same endpoint while it exists. */
export function pickEndpoint<E extends { address: string }>(
  key: string,
  endpoints: readonly E[],
): E | undefined {
  let best: E | undefined;
  let bestScore = "";
  for (const e of endpoints) {
    const score = md5(key + "\0" + e.address);
    if (best === undefined || score > bestScore) {
      best = e;
      bestScore = score;
    }
  }
  return best;
}

export function setCookieHeader(
  cfg: Affinity,
  value: string,
  opts: { path: string; secure: boolean; nowMs: number },
): string {
  const parts = [`${cfg.cookieName}=${value}`];
  if (cfg.expiresSeconds !== undefined)
    parts.push(`Expires=${new Date(opts.nowMs + cfg.expiresSeconds * 1000).toUTCString()}`);
  if (cfg.maxAgeSeconds !== undefined) parts.push(`Max-Age=${cfg.maxAgeSeconds}`);
  parts.push(`Path=${cfg.path ?? opts.path}`);
  if (opts.secure) parts.push("Secure");
  parts.push("HttpOnly");
  if (cfg.sameSite) parts.push(`SameSite=${cfg.sameSite}`);
  return parts.join("; ");
}
