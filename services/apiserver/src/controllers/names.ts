// Generated names and hashes in the shapes Kubernetes produces them: 5-character suffixes from
// k8s.io/apimachinery/pkg/util/rand's alphabet, and the pod-template-hash label value
// (FNV-32a of the template plus the collision count, written with SafeEncodeString).
import { randomInt } from "node:crypto";

/** rand.alphanums: no vowels (no accidental words), no 0/1/3 (confusable with o/l/e). */
export const NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789";

/** rand.String(n) */
export function randomSuffix(n = 5): string {
  let s = "";
  for (let i = 0; i < n; i++) s += NAME_ALPHABET[randomInt(NAME_ALPHABET.length)];
  return s;
}

/** names.SimpleNameGenerator: the base cut to leave room for the suffix within 63 characters. */
export function generateName(base: string): string {
  const maxBase = 63 - 5;
  return (base.length > maxBase ? base.slice(0, maxBase) : base) + randomSuffix(5);
}

/** rand.SafeEncodeString: each character mapped into the alphabet by its code. */
export function safeEncodeString(s: string): string {
  let out = "";
  for (const ch of s) out += NAME_ALPHABET[ch.codePointAt(0)! % NAME_ALPHABET.length];
  return out;
}

function fnv32a(bytes: Uint8Array, h = 0x811c9dc5): number {
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** JSON with object keys sorted, so equal templates hash equally whatever their key order. */
export function canonicalJSON(v: unknown): string {
  if (v === null || typeof v !== "object") return JSON.stringify(v) ?? "null";
  if (Array.isArray(v)) return `[${v.map(canonicalJSON).join(",")}]`;
  const entries = Object.entries(v as Record<string, unknown>)
    .filter(([, x]) => x !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJSON(x)}`).join(",")}}`;
}

/** controller.ComputeHash: the pod-template-hash of a template (and collision count). */
export function computeHash(template: unknown, collisionCount?: number): string {
  let h = fnv32a(new TextEncoder().encode(canonicalJSON(template)));
  if (collisionCount !== undefined && collisionCount !== null) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setUint32(0, collisionCount >>> 0, true);
    h = fnv32a(b, h);
  }
  return safeEncodeString(String(h));
}
