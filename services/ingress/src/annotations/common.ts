/** What every annotation module shares: the prefix, lookup and typed parse errors. */

export type AnnotationMap = Readonly<Record<string, string>>;

export const PREFIX = "nginx.ingress.kubernetes.io/";

export class AnnotationError extends Error {
  constructor(
    readonly annotation: string,
    message: string,
  ) {
    super(`annotation ${PREFIX}${annotation}: ${message}`);
  }
}

export function get(a: AnnotationMap, name: string): string | undefined {
  const v = a[PREFIX + name];
  return v === undefined ? undefined : v.trim();
}

export function parseBool(a: AnnotationMap, name: string, dflt: boolean): boolean {
  const v = get(a, name);
  if (v === undefined || v === "") return dflt;
  if (v === "true") return true;
  if (v === "false") return false;
  throw new AnnotationError(name, `'${v}' is not a boolean (use "true" or "false")`);
}

export function parseInteger(
  a: AnnotationMap,
  name: string,
  dflt: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const v = get(a, name);
  if (v === undefined || v === "") return dflt;
  if (!/^-?\d+$/.test(v)) throw new AnnotationError(name, `'${v}' is not an integer`);
  const n = Number(v);
  if (n < min || n > max) throw new AnnotationError(name, `${n} is out of range [${min}, ${max}]`);
  return n;
}
