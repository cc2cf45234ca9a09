/**
 * A troubleshooting exercise as lab-scenarios/<NN-id>/scenario.yaml describes it (the format is
 * lab-scenarios/README.md). Parsing is a function of the file's text: every problem is reported
 * with the file and the field it concerns, all at once, so an author fixes them in one pass.
 */
import { parse as parseYaml, parseAllDocuments } from "yaml";

export const DIFFICULTIES = ["easy", "medium", "hard"] as const;
export type Difficulty = (typeof DIFFICULTIES)[number];

export interface PodRef {
  namespace: string;
  /** A label selector (`app=frontend`); the first Running and Ready pod is used. */
  selector?: string;
  /** Or one pod by name. */
  name?: string;
}

export type From = { pod: PodRef } | { node: string } | { host: true };

export interface HttpProbe {
  from: From;
  url: string;
  /** The HTTP status every answer must have; 0: no answer may come (refused, reset, timed out). */
  expectStatus: number;
  bodyContains?: string;
  count: number;
  minDistinctBodies?: number;
  timeoutSeconds: number;
}

export interface DnsProbe {
  from: From;
  name: string;
  expect: "answer" | "nxdomain";
  /** Record type asked for (default A). */
  type: string;
  timeoutSeconds: number;
}

export interface TlsProbe {
  /** The SNI name sent to the lab's published HTTPS port. */
  host: string;
  expectSubjectContains?: string;
  expectIssuerContains?: string;
  timeoutSeconds: number;
}

export interface EndpointsProbe {
  namespace: string;
  service: string;
  minReady: number;
}

export interface PodsProbe {
  namespace: string;
  selector: string;
  minReady: number;
  /** At most this many Ready (for setup steps that wait for something to break). */
  maxReady?: number;
}

export type Probe =
  | { kind: "http"; http: HttpProbe }
  | { kind: "dns"; dns: DnsProbe }
  | { kind: "tls"; tls: TlsProbe }
  | { kind: "endpoints"; endpoints: EndpointsProbe }
  | { kind: "pods"; pods: PodsProbe };

export const PROBE_KINDS = ["http", "dns", "tls", "endpoints", "pods"] as const;

/** A probe and the symptom printed when it fails. */
export type CheckItem = Probe & { says: string };

export interface Scenario {
  id: string;
  title: string;
  difficulty: Difficulty;
  guide: string[];
  story: string;
  setup: {
    manifests: string[];
    kubectl: string[][];
    faults: string[][];
    ready: CheckItem[];
  };
  hints: string[];
  check: CheckItem[];
  solution: { kubectl: string[][]; text: string };
  explanation: string;
  reset: { kubectl: string[][] };
}

export class ScenarioError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: ${problems.length === 1 ? problems[0] : `\n  ${problems.join("\n  ")}`}`);
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** Collects problems as "field: message" while reading a document of unknown shape. */
class Reader {
  problems: string[] = [];

  fail(field: string, message: string): void {
    this.problems.push(`${field}: ${message}`);
  }

  known(o: Obj, field: string, keys: string[]): void {
    for (const k of Object.keys(o))
      if (!keys.includes(k))
        this.fail(field ? `${field}.${k}` : k, `unknown field (expected one of ${keys.join(", ")})`);
  }

  string(o: Obj, key: string, field: string, opts: { optional?: boolean } = {}): string | undefined {
    const v = o[key];
    if (v === undefined || v === null) {
      if (!opts.optional) this.fail(field, "required");
      return undefined;
    }
    if (typeof v !== "string" || v.trim() === "") {
      this.fail(field, `must be a non-empty string, got ${JSON.stringify(v)}`);
      return undefined;
    }
    return v;
  }

  int(
    o: Obj,
    key: string,
    field: string,
    dflt: number | undefined,
    min: number,
    max: number,
  ): number | undefined {
    const v = o[key];
    if (v === undefined || v === null) {
      if (dflt === undefined) this.fail(field, "required");
      return dflt;
    }
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      this.fail(field, `must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
      return dflt;
    }
    return v;
  }

  strings(
    o: Obj,
    key: string,
    field: string,
    opts: { optional?: boolean; nonEmpty?: boolean } = {},
  ): string[] {
    const v = o[key];
    if (v === undefined || v === null) {
      if (!opts.optional) this.fail(field, "required");
      return [];
    }
    if (!Array.isArray(v) || v.some((s) => typeof s !== "string" || s === "")) {
      this.fail(field, "must be a list of non-empty strings");
      return [];
    }
    if (opts.nonEmpty && v.length === 0) this.fail(field, "must not be empty");
    return v as string[];
  }

  argvs(o: Obj, key: string, field: string): string[][] {
    const v = o[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      this.fail(field, 'must be a list of argument lists, e.g. [["get", "pods"]]');
      return [];
    }
    const out: string[][] = [];
    v.forEach((argv, i) => {
      if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== "string"))
        this.fail(`${field}[${i}]`, "must be a non-empty list of strings (one argv)");
      else out.push(argv as string[]);
    });
    return out;
  }

  obj(o: Obj, key: string, field: string, opts: { optional?: boolean } = {}): Obj | undefined {
    const v = o[key];
    if (v === undefined || v === null) {
      if (!opts.optional) this.fail(field, "required");
      return undefined;
    }
    if (!isObj(v)) {
      this.fail(field, "must be a mapping");
      return undefined;
    }
    return v;
  }
}

const idPattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const selectorPattern =
  /^[A-Za-z0-9._/-]+(\s*(=|==|!=)\s*[A-Za-z0-9._-]*)?(\s*,\s*[A-Za-z0-9._/-]+(\s*(=|==|!=)\s*[A-Za-z0-9._-]*)?)*$/;

function readPodRef(r: Reader, o: Obj, field: string): PodRef | undefined {
  r.known(o, field, ["namespace", "selector", "name"]);
  const namespace = r.string(o, "namespace", `${field}.namespace`);
  const selector = r.string(o, "selector", `${field}.selector`, { optional: true });
  const name = r.string(o, "name", `${field}.name`, { optional: true });
  if (o.selector === undefined && o.name === undefined) r.fail(field, "needs a selector or a name");
  else if (selector !== undefined && name !== undefined) r.fail(field, "give a selector or a name, not both");
  if (selector !== undefined && !selectorPattern.test(selector))
    r.fail(`${field}.selector`, `not a label selector: ${JSON.stringify(selector)}`);
  if (namespace === undefined) return undefined;
  return { namespace, ...(selector ? { selector } : {}), ...(name ? { name } : {}) };
}

function readFrom(r: Reader, o: Obj, field: string): From | undefined {
  const from = r.obj(o, "from", field);
  if (!from) return undefined;
  const keys = Object.keys(from);
  if (keys.length !== 1 || !["pod", "node", "host"].includes(keys[0]!)) {
    r.fail(field, "must be one of { pod: {namespace, selector} }, { node: NAME }, { host: true }");
    return undefined;
  }
  if (keys[0] === "pod") {
    const pod = r.obj(from, "pod", `${field}.pod`);
    const ref = pod && readPodRef(r, pod, `${field}.pod`);
    return ref ? { pod: ref } : undefined;
  }
  if (keys[0] === "node") {
    const node = r.string(from, "node", `${field}.node`);
    return node ? { node } : undefined;
  }
  if (from.host !== true) {
    r.fail(`${field}.host`, "must be true");
    return undefined;
  }
  return { host: true };
}

function readProbe(r: Reader, o: Obj, field: string, kind: (typeof PROBE_KINDS)[number]): Probe | undefined {
  const f = `${field}.${kind}`;
  const p = r.obj(o, kind, f);
  if (!p) return undefined;
  const before = r.problems.length;
  switch (kind) {
    case "http": {
      r.known(p, f, [
        "from",
        "url",
        "expectStatus",
        "bodyContains",
        "count",
        "minDistinctBodies",
        "timeoutSeconds",
      ]);
      const from = readFrom(r, p, `${f}.from`);
      const url = r.string(p, "url", `${f}.url`);
      if (url !== undefined) {
        let u: URL | undefined;
        try {
          u = new URL(url);
        } catch {
          /* reported below */
        }
        if (!u || (u.protocol !== "http:" && u.protocol !== "https:"))
          r.fail(`${f}.url`, `must be an http:// or https:// URL, got ${JSON.stringify(url)}`);
      }
      const http: HttpProbe = {
        from: from!,
        url: url!,
        expectStatus: r.int(p, "expectStatus", `${f}.expectStatus`, 200, 0, 599)!,
        count: r.int(p, "count", `${f}.count`, 1, 1, 100)!,
        timeoutSeconds: r.int(p, "timeoutSeconds", `${f}.timeoutSeconds`, 5, 1, 120)!,
      };
      if (http.expectStatus > 0 && http.expectStatus < 100)
        r.fail(
          `${f}.expectStatus`,
          "must be an HTTP status (100-599), or 0 for no answer at all (refused, timed out)",
        );
      const body = r.string(p, "bodyContains", `${f}.bodyContains`, { optional: true });
      if (body !== undefined) http.bodyContains = body;
      if (p.minDistinctBodies !== undefined) {
        http.minDistinctBodies = r.int(p, "minDistinctBodies", `${f}.minDistinctBodies`, 1, 1, 100);
        if ((http.minDistinctBodies ?? 0) > http.count)
          r.fail(`${f}.minDistinctBodies`, `is more than count (${http.count}): it could never pass`);
      }
      return r.problems.length === before ? { kind, http } : undefined;
    }
    case "dns": {
      r.known(p, f, ["from", "name", "expect", "type", "timeoutSeconds"]);
      const from = readFrom(r, p, `${f}.from`);
      if (from && "host" in from)
        r.fail(`${f}.from`, "a DNS probe runs in a pod or on a node, not on the host");
      const name = r.string(p, "name", `${f}.name`);
      const expect = p.expect ?? "answer";
      if (expect !== "answer" && expect !== "nxdomain")
        r.fail(`${f}.expect`, `must be answer or nxdomain, got ${JSON.stringify(expect)}`);
      const type = r.string(p, "type", `${f}.type`, { optional: true }) ?? "A";
      if (!/^[A-Z]+$/.test(type)) r.fail(`${f}.type`, `not a record type: ${JSON.stringify(type)}`);
      const timeoutSeconds = r.int(p, "timeoutSeconds", `${f}.timeoutSeconds`, 5, 1, 60)!;
      return r.problems.length === before
        ? {
            kind,
            dns: { from: from!, name: name!, expect: expect as DnsProbe["expect"], type, timeoutSeconds },
          }
        : undefined;
    }
    case "tls": {
      r.known(p, f, ["host", "expectSubjectContains", "expectIssuerContains", "timeoutSeconds"]);
      const host = r.string(p, "host", `${f}.host`);
      const tls: TlsProbe = {
        host: host!,
        timeoutSeconds: r.int(p, "timeoutSeconds", `${f}.timeoutSeconds`, 5, 1, 60)!,
      };
      const subj = r.string(p, "expectSubjectContains", `${f}.expectSubjectContains`, { optional: true });
      const iss = r.string(p, "expectIssuerContains", `${f}.expectIssuerContains`, { optional: true });
      if (subj !== undefined) tls.expectSubjectContains = subj;
      if (iss !== undefined) tls.expectIssuerContains = iss;
      return r.problems.length === before ? { kind, tls } : undefined;
    }
    case "endpoints": {
      r.known(p, f, ["namespace", "service", "minReady"]);
      const namespace = r.string(p, "namespace", `${f}.namespace`);
      const service = r.string(p, "service", `${f}.service`);
      const minReady = r.int(p, "minReady", `${f}.minReady`, 1, 0, 1000)!;
      return r.problems.length === before
        ? { kind, endpoints: { namespace: namespace!, service: service!, minReady } }
        : undefined;
    }
    case "pods": {
      r.known(p, f, ["namespace", "selector", "minReady", "maxReady"]);
      const namespace = r.string(p, "namespace", `${f}.namespace`);
      const selector = r.string(p, "selector", `${f}.selector`);
      if (selector !== undefined && !selectorPattern.test(selector))
        r.fail(`${f}.selector`, `not a label selector: ${JSON.stringify(selector)}`);
      const minReady = r.int(p, "minReady", `${f}.minReady`, 1, 0, 1000)!;
      const pods: PodsProbe = { namespace: namespace!, selector: selector!, minReady };
      if (p.maxReady !== undefined) {
        pods.maxReady = r.int(p, "maxReady", `${f}.maxReady`, 0, 0, 1000);
        if ((pods.maxReady ?? 0) < minReady) r.fail(`${f}.maxReady`, `is less than minReady (${minReady})`);
      }
      return r.problems.length === before ? { kind, pods } : undefined;
    }
  }
}

function readChecks(r: Reader, list: unknown, field: string, saysRequired: boolean): CheckItem[] {
  if (list === undefined || list === null) {
    if (saysRequired) r.fail(field, "required: at least one probe");
    return [];
  }
  if (!Array.isArray(list)) {
    r.fail(field, "must be a list of probes");
    return [];
  }
  if (saysRequired && list.length === 0) r.fail(field, "must have at least one probe");
  const out: CheckItem[] = [];
  list.forEach((item, i) => {
    const f = `${field}[${i}]`;
    if (!isObj(item)) {
      r.fail(f, "must be a mapping with one probe kind");
      return;
    }
    r.known(item, f, ["says", ...PROBE_KINDS]);
    const says = r.string(item, "says", `${f}.says`, { optional: !saysRequired });
    const kinds = PROBE_KINDS.filter((k) => item[k] !== undefined);
    if (kinds.length !== 1) {
      r.fail(
        f,
        `needs exactly one probe kind of ${PROBE_KINDS.join(", ")}, got ${kinds.length ? kinds.join(", ") : "none"}`,
      );
      return;
    }
    const probe = readProbe(r, item, f, kinds[0]!);
    if (probe) out.push({ ...probe, says: says ?? describeProbe(probe) });
  });
  return out;
}

/** What a probe looks at, in a few words (for setup probes, which need no `says`). */
export function describeProbe(p: Probe): string {
  switch (p.kind) {
    case "http":
      return `${p.http.url} answers ${p.http.expectStatus}`;
    case "dns":
      return `${p.dns.name} resolves (${p.dns.expect})`;
    case "tls":
      return `the certificate served for ${p.tls.host}`;
    case "endpoints":
      return `${p.endpoints.namespace}/${p.endpoints.service} has ${p.endpoints.minReady} ready endpoints`;
    case "pods":
      return `${p.pods.namespace} pods ${p.pods.selector}: ${p.pods.minReady}${p.pods.maxReady !== undefined ? `-${p.pods.maxReady}` : "+"} Ready`;
  }
}

/**
 * Parses scenario.yaml text. `folder` is the exercise's folder name (NN-id): the id must match it.
 * Throws ScenarioError listing every problem.
 */
export function parseScenario(text: string, file: string, folder?: string): Scenario {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true });
  } catch (err) {
    throw new ScenarioError(file, [`not valid YAML: ${(err as Error).message.split("\n")[0]}`]);
  }
  if (!isObj(doc)) throw new ScenarioError(file, ["must be a YAML mapping (id, title, story, ...)"]);
  const r = new Reader();
  r.known(doc, "", [
    "id",
    "title",
    "difficulty",
    "guide",
    "story",
    "setup",
    "hints",
    "check",
    "solution",
    "explanation",
    "reset",
  ]);
  const id = r.string(doc, "id", "id");
  if (id !== undefined && !idPattern.test(id))
    r.fail("id", `use lowercase letters, digits and '-', got ${JSON.stringify(id)}`);
  if (id !== undefined && folder !== undefined) {
    const m = /^\d+-(.+)$/.exec(folder);
    if (!m || m[1] !== id)
      r.fail("id", `must equal the folder name without its NN- prefix (folder ${folder})`);
  }
  const title = r.string(doc, "title", "title");
  const difficulty = doc.difficulty;
  if (!DIFFICULTIES.includes(difficulty as Difficulty))
    r.fail("difficulty", `must be one of ${DIFFICULTIES.join(", ")}, got ${JSON.stringify(difficulty)}`);
  const guide = r.strings(doc, "guide", "guide", { nonEmpty: true });
  const story = r.string(doc, "story", "story");

  const setupObj = r.obj(doc, "setup", "setup", { optional: true }) ?? {};
  r.known(setupObj, "setup", ["manifests", "kubectl", "faults", "ready"]);
  const manifests = r.strings(setupObj, "manifests", "setup.manifests", { optional: true });
  manifests.forEach((m, i) => {
    if (m.startsWith("/") || m.split("/").includes(".."))
      r.fail(
        `setup.manifests[${i}]`,
        `must be a path inside the exercise's folder, got ${JSON.stringify(m)}`,
      );
  });
  const setup = {
    manifests,
    kubectl: r.argvs(setupObj, "kubectl", "setup.kubectl"),
    faults: r.argvs(setupObj, "faults", "setup.faults"),
    ready: readChecks(r, setupObj.ready, "setup.ready", false),
  };

  const hints = r.strings(doc, "hints", "hints", { nonEmpty: true });
  const check = readChecks(r, doc.check, "check", true);

  const solutionObj = r.obj(doc, "solution", "solution") ?? {};
  r.known(solutionObj, "solution", ["kubectl", "text"]);
  const solution = {
    kubectl: r.argvs(solutionObj, "kubectl", "solution.kubectl"),
    text: r.string(solutionObj, "text", "solution.text") ?? "",
  };
  if (doc.solution !== undefined && solution.kubectl.length === 0 && solutionObj.kubectl === undefined)
    r.fail("solution.kubectl", "required: the commands a learner would type (the tests run them)");
  const explanation = r.string(doc, "explanation", "explanation");

  const resetObj = r.obj(doc, "reset", "reset", { optional: true }) ?? {};
  r.known(resetObj, "reset", ["kubectl"]);
  const reset = { kubectl: r.argvs(resetObj, "kubectl", "reset.kubectl") };

  if (r.problems.length) throw new ScenarioError(file, r.problems);
  return {
    id: id!,
    title: title!,
    difficulty: difficulty as Difficulty,
    guide,
    story: story!,
    setup,
    hints,
    check,
    solution,
    explanation: explanation!,
    reset,
  };
}

export interface ManifestObject {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

/** The objects of a multi-document manifest, checked for the fields `kubectl apply` needs. */
export function parseManifest(text: string, file: string): ManifestObject[] {
  const problems: string[] = [];
  const out: ManifestObject[] = [];
  parseAllDocuments(text).forEach((d, i) => {
    if (d.errors.length) {
      problems.push(`document ${i + 1}: not valid YAML: ${d.errors[0]!.message.split("\n")[0]}`);
      return;
    }
    const o = d.toJS() as unknown;
    if (o === null || o === undefined) return;
    if (!isObj(o)) {
      problems.push(`document ${i + 1}: must be a Kubernetes object`);
      return;
    }
    const meta = isObj(o.metadata) ? o.metadata : {};
    const missing = [
      typeof o.apiVersion !== "string" && "apiVersion",
      typeof o.kind !== "string" && "kind",
      typeof meta.name !== "string" && "metadata.name",
    ].filter(Boolean);
    if (missing.length) {
      problems.push(`document ${i + 1}: missing ${missing.join(", ")}`);
      return;
    }
    out.push({
      apiVersion: o.apiVersion as string,
      kind: o.kind as string,
      name: meta.name as string,
      ...(typeof meta.namespace === "string" ? { namespace: meta.namespace } : {}),
    });
  });
  if (problems.length) throw new ScenarioError(file, problems);
  return out;
}

/** The Namespaces a scenario's manifests create: what the generic reset deletes. */
export function manifestNamespaces(objects: ManifestObject[]): string[] {
  return objects.filter((o) => o.kind === "Namespace" && o.apiVersion === "v1").map((o) => o.name);
}
