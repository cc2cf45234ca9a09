// Field selectors (`--field-selector`, `?fieldSelector=`): the syntax of k8s.io/apimachinery/pkg/fields
// and, per kind, the fields kube-apiserver lets clients select on, with its error messages.
import type { ResourceType } from "../resources.ts";
import type { Event, KubeObject, Namespace, Node, Pod, Secret, Service } from "../types.ts";
import { SelectorError } from "./labels.ts";

export interface FieldRequirement {
  field: string;
  operator: "=" | "==" | "!=";
  value: string;
}

/** Splits on commas that are not escaped by a backslash. */
function splitTerms(s: string): string[] {
  if (s.length === 0) return [];
  const terms: string[] = [];
  let start = 0;
  let inSlash = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inSlash) inSlash = false;
    else if (c === "\\") inSlash = true;
    else if (c === ",") {
      terms.push(s.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(s.slice(start));
  return terms;
}

/** The first operator found scanning left to right; at one position `!=` wins over `==` over `=`. */
function splitTerm(term: string): [string, FieldRequirement["operator"], string] | undefined {
  for (let i = 0; i < term.length; i++) {
    for (const op of ["!=", "==", "="] as const) {
      if (term.startsWith(op, i)) return [term.slice(0, i), op, term.slice(i + op.length)];
    }
  }
  return undefined;
}

function unescapeValue(s: string): string {
  if (!/[\\,=]/.test(s)) return s;
  let out = "";
  let inSlash = false;
  for (const c of s) {
    if (inSlash) {
      if (c === "\\" || c === "," || c === "=") out += c;
      else throw new SelectorError(`invalid field selector: invalid escape sequence: \\${c}`);
      inSlash = false;
      continue;
    }
    if (c === "\\") inSlash = true;
    else if (c === "," || c === "=")
      // Go prints the rune with %v, i.e. as its number
      throw new SelectorError(`invalid field selector: unescaped character in value: ${c.codePointAt(0)}`);
    else out += c;
  }
  if (inSlash) throw new SelectorError("invalid field selector: invalid escape sequence: \\");
  return out;
}

/**
 * Parses `metadata.name=web,status.phase!=Running` (fields.ParseSelector). With a resource, also
 * checks each field is selectable on that kind and applies kube's renames (pods' `spec.host`).
 * Throws SelectorError with kube's message.
 */
export function parseFieldSelector(s: string, resource?: ResourceType): FieldRequirement[] {
  const parts = splitTerms(s).sort();
  const reqs: FieldRequirement[] = [];
  for (const part of parts) {
    if (part === "") continue;
    const t = splitTerm(part);
    if (!t) throw new SelectorError(`invalid selector: '${s}'; can't understand '${part}'`);
    reqs.push({ field: t[0], operator: t[1], value: unescapeValue(t[2]) });
  }
  return resource ? reqs.map((r) => convertField(resource.kind, resource.group, r)) : reqs;
}

const metaOnly = ["metadata.name", "metadata.namespace"];

/** Kinds with their own conversion function; every other kind accepts metadata.name and metadata.namespace. */
const selectable: Record<string, string[]> = {
  "/Pod": [
    ...metaOnly,
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
  ],
  "/Node": ["metadata.name", "spec.unschedulable"],
  "/Event": [
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
    ...metaOnly,
  ],
  "/Namespace": ["status.phase", "metadata.name"],
  "/Secret": ["type", ...metaOnly],
  "/Service": [...metaOnly, "spec.clusterIP", "spec.type"],
};

function convertField(kind: string, group: string, r: FieldRequirement): FieldRequirement {
  const own = selectable[`${group}/${kind}`];
  if (own) {
    if (group === "" && kind === "Pod" && r.field === "spec.host") return { ...r, field: "spec.nodeName" };
    if (own.includes(r.field)) return r;
    throw new SelectorError(`field label not supported: ${r.field}`);
  }
  if (metaOnly.includes(r.field)) return r;
  throw new SelectorError(
    `${JSON.stringify(r.field)} is not a known field selector: only "metadata.name", "metadata.namespace"`,
  );
}

/** Throws SelectorError if a requirement names a field this resource cannot be selected on. */
export function validateFieldSelector(resource: ResourceType, sel: FieldRequirement[]): void {
  for (const r of sel) convertField(resource.kind, resource.group, r);
}

const str = (v: unknown): string => (v === undefined || v === null ? "" : String(v));

/** The selectable fields of an object with their string values, as the kind's registry strategy builds them. */
export function fieldsOf(obj: KubeObject): Record<string, string> {
  try {
    return fieldsOfUnchecked(obj);
  } catch {
    // an object of the wrong shape only has its identity to select on
    return { "metadata.name": str(obj?.metadata?.name), "metadata.namespace": str(obj?.metadata?.namespace) };
  }
}

function fieldsOfUnchecked(obj: KubeObject): Record<string, string> {
  const f: Record<string, string> = {
    "metadata.name": str(obj.metadata?.name),
    "metadata.namespace": str(obj.metadata?.namespace),
  };
  const group = obj.apiVersion.includes("/") ? obj.apiVersion.split("/")[0] : "";
  if (group !== "") return f;
  switch (obj.kind) {
    case "Pod": {
      const p = obj as Pod;
      f["spec.nodeName"] = str(p.spec?.nodeName);
      f["spec.restartPolicy"] = str(p.spec?.restartPolicy);
      f["spec.schedulerName"] = str(p.spec?.schedulerName);
      f["spec.serviceAccountName"] = str(p.spec?.serviceAccountName);
      f["spec.hostNetwork"] = p.spec?.hostNetwork ? "true" : "false";
      f["status.phase"] = str(p.status?.phase);
      f["status.podIP"] = str(p.status?.podIPs?.[0]?.ip ?? p.status?.podIP);
      f["status.nominatedNodeName"] = str(p.status?.nominatedNodeName);
      break;
    }
    case "Node":
      f["spec.unschedulable"] = (obj as Node).spec?.unschedulable ? "true" : "false";
      break;
    case "Event": {
      const e = obj as Event;
      const io = e.involvedObject ?? {};
      f["involvedObject.kind"] = str(io.kind);
      f["involvedObject.namespace"] = str(io.namespace);
      f["involvedObject.name"] = str(io.name);
      f["involvedObject.uid"] = str(io.uid);
      f["involvedObject.apiVersion"] = str(io.apiVersion);
      f["involvedObject.resourceVersion"] = str(io.resourceVersion);
      f["involvedObject.fieldPath"] = str(io.fieldPath);
      f["reason"] = str(e.reason);
      f["reportingComponent"] = str(e.reportingComponent);
      // events.k8s.io writers fill reportingController instead of source.component
      f["source"] = str(e.source?.component || e.reportingComponent);
      f["type"] = str(e.type);
      break;
    }
    case "Namespace":
      f["status.phase"] = str((obj as Namespace).status?.phase);
      break;
    case "Secret":
      f["type"] = str((obj as Secret).type);
      break;
    case "Service":
      f["spec.clusterIP"] = str((obj as Service).spec?.clusterIP);
      f["spec.type"] = str((obj as Service).spec?.type);
      break;
  }
  return f;
}

/**
 * Whether an object satisfies every requirement (an empty selector matches everything). A field the
 * kind does not support throws SelectorError, as the API server refuses such a list.
 */
export function fieldSelectorMatches(sel: FieldRequirement[], obj: KubeObject): boolean {
  if (sel.length === 0) return true;
  const group = obj.apiVersion.includes("/") ? obj.apiVersion.split("/")[0] : "";
  const fields = fieldsOf(obj);
  return sel.every((r0) => {
    const r = convertField(obj.kind, group, r0);
    const v = fields[r.field] ?? "";
    return r.operator === "!=" ? v !== r.value : v === r.value;
  });
}

/** The canonical string form, terms sorted, values escaped (fields.Selector.String()). */
export function fieldSelectorToString(sel: FieldRequirement[]): string {
  const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/,/g, "\\,").replace(/=/g, "\\=");
  return sel.map((r) => `${r.field}${r.operator === "!=" ? "!=" : "="}${esc(r.value)}`).join(",");
}
