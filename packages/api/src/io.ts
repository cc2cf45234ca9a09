// Manifests in and YAML out, read and written the way kubectl does: multi-document YAML 1.1 (as
// go-yaml v2 resolves it: yes/no/on/off are booleans, 0755 is octal, timestamps stay strings) or a
// stream of JSON objects; `kind: List` flattened; output keys sorted as go-yaml v2 sorts them.
import {
  Document,
  isMap,
  isSeq,
  parseAllDocuments,
  Scalar,
  YAMLMap,
  YAMLSeq,
  type Node as YamlNode,
} from "yaml";
import type { KubeObject } from "./types.ts";
import { emitYaml } from "./yaml-emit.ts";

/** Malformed manifest input; the message names the document and line. */
export class ManifestError extends Error {
  override name = "ManifestError";
  constructor(
    message: string,
    readonly line?: number,
  ) {
    super(message);
  }
}

function plainData(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v).toString("base64");
  if (Array.isArray(v)) return v.map(plainData);
  if (v instanceof Map) return plainData(Object.fromEntries(v));
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = plainData(x);
    return out;
  }
  if (typeof v === "bigint") return Number(v);
  return v;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  return `a ${typeof v}`;
}

/** Checks one decoded document and flattens lists into `out`. */
function collect(doc: unknown, where: string, line: number | undefined, out: KubeObject[]): void {
  if (doc === null || doc === undefined) return;
  if (typeof doc !== "object" || Array.isArray(doc))
    throw new ManifestError(
      `${where}: expected an object with apiVersion and kind, found ${describe(doc)}`,
      line,
    );
  const o = doc as Record<string, unknown>;
  if (Object.keys(o).length === 0) return;
  const missing = ["apiVersion", "kind"].filter((k) => typeof o[k] !== "string" || o[k] === "");
  if (missing.length)
    throw new ManifestError(`${where}: ${missing.map((k) => `${k} not set`).join(", ")}`, line);
  if (typeof o.kind === "string" && o.kind.endsWith("List") && Array.isArray(o.items)) {
    o.items.forEach((item, i) => collect(item, `${where}, items[${i}]`, line, out));
    return;
  }
  if (o.metadata === undefined || o.metadata === null) o.metadata = {};
  else if (typeof o.metadata !== "object" || Array.isArray(o.metadata))
    throw new ManifestError(`${where}: metadata must be an object, found ${describe(o.metadata)}`, line);
  out.push(o as unknown as KubeObject);
}

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** Splits a stream of concatenated JSON values (what kubectl accepts when input starts with `{`). */
function parseJsonStream(text: string, out: KubeObject[]): void {
  let i = 0;
  let n = 0;
  const ws = (c: string) => c === " " || c === "\n" || c === "\r" || c === "\t";
  while (i < text.length) {
    while (i < text.length && ws(text[i])) i++;
    if (i >= text.length) break;
    const start = i;
    if (text[i] !== "{" && text[i] !== "[")
      throw new ManifestError(
        `JSON document ${n + 1} at line ${lineAt(text, i)}: unexpected character ${JSON.stringify(text[i])}`,
        lineAt(text, i),
      );
    let depth = 0;
    let inStr = false;
    for (; i < text.length; i++) {
      const c = text[i];
      if (inStr) {
        if (c === "\\") i++;
        else if (c === '"') inStr = false;
      } else if (c === '"') inStr = true;
      else if (c === "{" || c === "[") depth++;
      else if (c === "}" || c === "]") {
        depth--;
        if (depth === 0) {
          i++;
          break;
        }
      }
    }
    const chunk = text.slice(start, i);
    n++;
    let value: unknown;
    try {
      value = JSON.parse(chunk);
    } catch (e) {
      const m = /position (\d+)/.exec((e as Error).message);
      const line = lineAt(text, start + (m ? Number(m[1]) : chunk.length));
      throw new ManifestError(`JSON document ${n} at line ${line}: ${(e as Error).message}`, line);
    }
    const line = lineAt(text, start);
    if (Array.isArray(value))
      value.forEach((v, k) => collect(v, `JSON document ${n}[${k}] (line ${line})`, line, out));
    else collect(value, `JSON document ${n} (line ${line})`, line, out);
  }
}

/**
 * Parses what `kubectl apply -f` reads: YAML documents separated by `---`, or JSON. Empty documents
 * are skipped; `kind: List` (and any `*List` with items) is flattened. Throws ManifestError naming
 * the document and line of the first problem.
 */
export function parseManifests(text: string): KubeObject[] {
  const out: KubeObject[] = [];
  const trimmed = text.trimStart();
  if (trimmed.startsWith("{")) {
    parseJsonStream(text, out);
    return out;
  }
  const docs = parseAllDocuments(text, {
    version: "1.1",
    merge: true,
    uniqueKeys: true,
    prettyErrors: false,
    customTags: (tags) => tags.filter((t) => (t as { tag?: string }).tag !== "tag:yaml.org,2002:timestamp"),
  });
  const list = Array.isArray(docs) ? docs : [docs];
  list.forEach((doc, i) => {
    const startLine = doc.range ? lineAt(text, doc.range[0]) : undefined;
    const err = doc.errors[0];
    if (err) {
      const line = err.linePos?.[0]?.line ?? (err.pos ? lineAt(text, err.pos[0]) : startLine);
      const msg = err.message.replace(/ at line \d+, column \d+:?[\s\S]*$/, "");
      throw new ManifestError(`yaml: document ${i + 1}, line ${line}: ${msg}`, line);
    }
    let value: unknown;
    try {
      value = plainData(doc.toJS({ maxAliasCount: 100 }));
    } catch (e) {
      throw new ManifestError(
        `yaml: document ${i + 1}, line ${startLine}: ${(e as Error).message}`,
        startLine,
      );
    }
    collect(value, `document ${i + 1} (line ${startLine})`, startLine, out);
  });
  return out;
}

// ------------------------------------------------------------------ output

/** go-yaml v2's key order: non-letters before letters, digit runs compared as numbers. */
export function compareYamlKeys(a: string, b: string): number {
  const ar = [...a];
  const br = [...b];
  const isLetter = (c: string) => /\p{L}/u.test(c);
  const isDigit = (c: string) => c >= "0" && c <= "9";
  for (let i = 0; i < ar.length && i < br.length; i++) {
    if (ar[i] === br[i]) continue;
    const al = isLetter(ar[i]);
    const bl = isLetter(br[i]);
    if (al && bl) return ar[i] < br[i] ? -1 : 1;
    if (al || bl) return bl ? -1 : 1;
    let an = 0;
    let bn = 0;
    if (ar[i] === "0" || br[i] === "0") {
      for (let j = i - 1; j >= 0 && isDigit(ar[j]); j--) {
        if (ar[j] !== "0") {
          an = 1;
          bn = 1;
          break;
        }
      }
    }
    let ai = i;
    let bi = i;
    for (; ai < ar.length && isDigit(ar[ai]); ai++) an = an * 10 + Number(ar[ai]);
    for (; bi < br.length && isDigit(br[bi]); bi++) bn = bn * 10 + Number(br[bi]);
    if (an !== bn) return an < bn ? -1 : 1;
    if (ai !== bi) return ai < bi ? -1 : 1;
    return ar[i] < br[i] ? -1 : 1;
  }
  return ar.length - br.length;
}

/**
 * The YAML `kubectl get -o yaml` prints for an object: keys sorted, lists not indented under their key,
 * each string in go-yaml's style (quoted only where needed, `|` blocks), long lines folded at column 80.
 */
export function toYaml(obj: unknown): string {
  return emitYaml(JSON.parse(JSON.stringify(obj ?? null)), compareYamlKeys);
}
