// Decodes Kubernetes protobuf bodies (application/vnd.kubernetes.protobuf) into the JSON form of
// the object. kubectl's typed clients (create namespace/deployment/configmap/secret/service, run,
// expose) send this, and nothing makes them fall back to JSON.
//
// Envelope: the magic "k8s\0" then a runtime.Unknown {typeMeta{apiVersion,kind}, raw}. The raw
// message is decoded with the field tables in schema.json (see extract-schema.ts).
import { readFileSync } from "node:fs";
import { fields, WireError, type WireField } from "./wire.ts";

type FieldRow = [number, string, number, number, string];
interface MessageSchema {
  fields: FieldRow[];
  mapEntry?: boolean;
}

const schema = JSON.parse(readFileSync(new URL("./schema.json", import.meta.url), "utf8")) as Record<
  string,
  MessageSchema
>;
/**
 * Go structs embedded with `json:",inline"`: a message field in protobuf, its fields flattened
 * into the parent in JSON (e.g. a Volume's volumeSource, an IngressRule's ingressRuleValue).
 */
const V1 = ".k8s.io.api.core.v1";
const INLINE = new Set([
  `${V1}.Volume.volumeSource`,
  `${V1}.Probe.handler`,
  `${V1}.EphemeralContainer.ephemeralContainerCommon`,
  `${V1}.PersistentVolumeSpec.persistentVolumeSource`,
  `${V1}.ConfigMapEnvSource.localObjectReference`,
  `${V1}.ConfigMapKeySelector.localObjectReference`,
  `${V1}.ConfigMapProjection.localObjectReference`,
  `${V1}.ConfigMapVolumeSource.localObjectReference`,
  `${V1}.SecretEnvSource.localObjectReference`,
  `${V1}.SecretKeySelector.localObjectReference`,
  `${V1}.SecretProjection.localObjectReference`,
  ".k8s.io.api.networking.v1.IngressRule.ingressRuleValue",
]);
const isInline = (type: string, field: string) => INLINE.has(`${type}.${field}`);

/** A message's JSON field names, inline members flattened in. */
const jsonFields = new Map<string, Map<string, FieldRow>>();
function jsonFieldsOf(type: string): Map<string, FieldRow> {
  let m = jsonFields.get(type);
  if (!m) {
    m = new Map();
    for (const f of schema[type]?.fields ?? []) {
      if (isInline(type, f[1])) for (const [k, v] of jsonFieldsOf(f[4])) m.set(k, v);
      else m.set(f[1], f);
    }
    jsonFields.set(type, m);
  }
  return m;
}

const byNumber = new Map<string, Map<number, FieldRow>>();
function fieldOf(type: string, num: number): FieldRow | undefined {
  let m = byNumber.get(type);
  if (!m) {
    m = new Map((schema[type]?.fields ?? []).map((f) => [f[0], f]));
    byNumber.set(type, m);
  }
  return m.get(num);
}

export class ProtobufError extends Error {}

const MAGIC = [0x6b, 0x38, 0x73, 0x00];
const META = ".k8s.io.apimachinery.pkg.apis.meta.v1";

/**
 * Go pointer fields, for which a zero value is meaningful and kept. Other scalar fields hold
 * Go's zero value whenever the client left them unset (gogo writes non-pointer fields always),
 * and JSON's omitempty drops them, so the decoder drops them too.
 */
const POINTER_SCALARS = new Set([
  "replicas",
  "terminationGracePeriodSeconds",
  "activeDeadlineSeconds",
  "automountServiceAccountToken",
  "enableServiceLinks",
  "shareProcessNamespace",
  "hostUsers",
  "setHostnameAsFQDN",
  "runAsUser",
  "runAsGroup",
  "runAsNonRoot",
  "fsGroup",
  "privileged",
  "allowPrivilegeEscalation",
  "readOnlyRootFilesystem",
  "revisionHistoryLimit",
  "progressDeadlineSeconds",
  "allocateLoadBalancerNodePorts",
  "defaultMode",
  "optional",
  "immutable",
  "ready",
  "serving",
  "terminating",
  "leaseDurationSeconds",
  "leaseTransitions",
  "expirationSeconds",
  "priority",
  "partition",
  "deletionGracePeriodSeconds",
  "gracePeriodSeconds",
  "controller",
  "blockOwnerDeletion",
]);

function isZero(v: unknown): boolean {
  return v === "" || v === false || v === 0;
}

function rfc3339(seconds: number, nanos: number, micro: boolean): string {
  const d = new Date(seconds * 1000);
  const base = d.toISOString().slice(0, 19);
  return micro ? `${base}.${String(Math.floor(nanos / 1000)).padStart(6, "0")}Z` : `${base}Z`;
}

function int64(f: WireField, signed = true): number {
  const v = f.varint ?? 0n;
  return Number(signed ? BigInt.asIntN(64, v) : v);
}

function scalar(type: number, f: WireField): unknown {
  switch (type) {
    case 1:
      return Buffer.from(f.bytes!).readDoubleLE(0);
    case 2:
      return Buffer.from(f.bytes!).readFloatLE(0);
    case 3:
    case 5:
      return int64(f);
    case 4:
    case 13:
      return int64(f, false);
    case 6:
      return Number(Buffer.from(f.bytes!).readBigUInt64LE(0));
    case 7:
      return Buffer.from(f.bytes!).readUInt32LE(0);
    case 15:
      return Buffer.from(f.bytes!).readInt32LE(0);
    case 16:
      return Number(Buffer.from(f.bytes!).readBigInt64LE(0));
    case 17:
    case 18: {
      const v = f.varint ?? 0n;
      return Number((v >> 1n) ^ -(v & 1n));
    }
    case 8:
      return (f.varint ?? 0n) !== 0n;
    case 9:
      if (f.wireType !== 2) throw new ProtobufError("string field with a non-bytes wire type");
      return Buffer.from(f.bytes!).toString("utf8");
    case 12:
      if (f.wireType !== 2) throw new ProtobufError("bytes field with a non-bytes wire type");
      return Buffer.from(f.bytes!).toString("base64");
    case 14:
      return int64(f);
    default:
      throw new ProtobufError(`unsupported field type ${type}`);
  }
}

/** Types whose JSON form is not their message shape. */
function special(type: string, buf: Uint8Array): { value: unknown } | undefined {
  switch (type) {
    case `${META}.Time`:
    case `${META}.MicroTime`: {
      let s = 0;
      let n = 0;
      for (const f of fields(buf)) {
        if (f.num === 1) s = int64(f);
        else if (f.num === 2) n = int64(f);
      }
      if (s === 0 && n === 0) return { value: null };
      return { value: rfc3339(s, n, type.endsWith("MicroTime")) };
    }
    case ".k8s.io.apimachinery.pkg.api.resource.Quantity":
      for (const f of fields(buf)) if (f.num === 1) return { value: Buffer.from(f.bytes!).toString("utf8") };
      return { value: "0" };
    case ".k8s.io.apimachinery.pkg.util.intstr.IntOrString": {
      let kind = 0;
      let i = 0;
      let s = "";
      for (const f of fields(buf)) {
        if (f.num === 1) kind = int64(f);
        else if (f.num === 2) i = int64(f);
        else if (f.num === 3) s = Buffer.from(f.bytes!).toString("utf8");
      }
      return { value: kind === 1 ? s : i };
    }
    case ".k8s.io.apimachinery.pkg.runtime.RawExtension":
    case `${META}.FieldsV1`: {
      for (const f of fields(buf)) {
        if (f.num !== 1) continue;
        const text = Buffer.from(f.bytes!).toString("utf8");
        try {
          return { value: JSON.parse(text) };
        } catch {
          throw new ProtobufError("embedded raw object is not JSON");
        }
      }
      return { value: null };
    }
    case `${META}.Duration`: {
      let ns = 0;
      for (const f of fields(buf)) if (f.num === 1) ns = int64(f);
      return { value: goDuration(ns) };
    }
    default:
      return undefined;
  }
}

function goDuration(ns: number): string {
  if (ns === 0) return "0s";
  let s = ns / 1e9;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${h ? `${h}h` : ""}${h || m ? `${m}m` : ""}${Number(s.toFixed(9))}s`;
}

function decodeMessage(type: string, buf: Uint8Array, depth: number): unknown {
  if (depth > 64) throw new ProtobufError("message nesting too deep");
  const sp = special(type, buf);
  if (sp) return sp.value;
  const msg = schema[type];
  if (!msg) throw new ProtobufError(`no schema for ${type}`);
  const out: Record<string, unknown> = {};
  for (const f of fields(buf)) {
    const row = fieldOf(type, f.num);
    if (!row) continue; // unknown fields are skipped, as proto decoders do
    const [, name, label, ftype, typeName] = row;
    let values: unknown[];
    if (ftype === 11) {
      if (f.wireType !== 2) throw new ProtobufError(`${name}: message field with wire type ${f.wireType}`);
      const sub = schema[typeName];
      if (sub?.mapEntry) {
        const entry = decodeMessage(typeName, f.bytes!, depth + 1) as { key?: unknown; value?: unknown };
        const obj = (out[name] ??= {}) as Record<string, unknown>;
        obj[String(entry.key ?? "")] = entry.value ?? (schema[typeName]!.fields[1]?.[3] === 11 ? {} : "");
        continue;
      }
      const decoded = decodeMessage(typeName, f.bytes!, depth + 1);
      if (isInline(type, name) && decoded && typeof decoded === "object") {
        Object.assign(out, decoded);
        continue;
      }
      values = [decoded];
    } else if (f.wireType === 2 && ftype !== 9 && ftype !== 12) {
      // packed repeated scalars
      values = [];
      const wt =
        ftype === 1 || ftype === 6 || ftype === 16 ? 1 : ftype === 2 || ftype === 7 || ftype === 15 ? 5 : 0;
      const b = f.bytes!;
      let i = 0;
      while (i < b.length) {
        if (wt === 0) {
          const pos = { i };
          let v = 0n;
          let shift = 0n;
          for (;;) {
            if (pos.i >= b.length) throw new ProtobufError("truncated packed varint");
            const x = b[pos.i++]!;
            v |= BigInt(x & 0x7f) << shift;
            if (!(x & 0x80)) break;
            shift += 7n;
          }
          values.push(scalar(ftype, { num: f.num, wireType: 0, varint: v }));
          i = pos.i;
        } else {
          const n = wt === 1 ? 8 : 4;
          values.push(scalar(ftype, { num: f.num, wireType: wt, bytes: b.subarray(i, i + n) }));
          i += n;
        }
      }
    } else {
      values = [scalar(ftype, f)];
    }
    if (label === 3) ((out[name] ??= []) as unknown[]).push(...values);
    else out[name] = values[values.length - 1];
  }
  for (const [k, v] of Object.entries(out)) {
    if (v === null || (isZero(v) && !POINTER_SCALARS.has(k))) delete out[k];
  }
  return out;
}

/** Types the JSON form writes as a scalar (or free-form JSON): no fields to check inside. */
const OPAQUE = new Set([
  `${META}.Time`,
  `${META}.MicroTime`,
  `${META}.Duration`,
  `${META}.FieldsV1`,
  ".k8s.io.apimachinery.pkg.api.resource.Quantity",
  ".k8s.io.apimachinery.pkg.util.intstr.IntOrString",
  ".k8s.io.apimachinery.pkg.runtime.RawExtension",
]);

/**
 * Removes the fields the kind does not have, as kube's decoder drops them, and returns their
 * paths in kube's notation (`spec.template.spec.containers[0].imagee`). undefined when the kind
 * is unknown here.
 */
export function pruneUnknownFields(obj: Record<string, unknown>): string[] | undefined {
  const type = `${packageOf(String(obj.apiVersion ?? ""))}.${String(obj.kind ?? "")}`;
  if (!schema[type]) return undefined;
  const out: string[] = [];
  walk(type, obj, "", out, true);
  return out;
}

function walk(type: string, value: unknown, path: string, out: string[], top = false): void {
  if (OPAQUE.has(type) || typeof value !== "object" || value === null || Array.isArray(value)) return;
  const names = jsonFieldsOf(type);
  const o = value as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (top && (key === "apiVersion" || key === "kind")) continue;
    const here = path ? `${path}.${key}` : key;
    const f = names.get(key);
    if (!f) {
      out.push(here);
      delete o[key];
      continue;
    }
    const [, , label, ftype, typeName] = f;
    if (ftype !== 11) continue;
    const sub = schema[typeName];
    const v = o[key];
    if (sub?.mapEntry) {
      const valueRow = sub.fields.find((x) => x[0] === 2);
      if (valueRow?.[3] === 11 && v && typeof v === "object" && !Array.isArray(v)) {
        for (const [k, x] of Object.entries(v as Record<string, unknown>))
          walk(valueRow[4], x, `${here}[${k}]`, out);
      }
    } else if (label === 3 && Array.isArray(v)) {
      v.forEach((x, i) => walk(typeName, x, `${here}[${i}]`, out));
    } else {
      walk(typeName, v, here, out);
    }
  }
}

/** The package protobuf messages of an API group live in: "" → core, "networking.k8s.io" → networking. */
function packageOf(apiVersion: string): string {
  const slash = apiVersion.indexOf("/");
  const group = slash < 0 ? "" : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  if (group === "meta.k8s.io") return `${META}`;
  return `.k8s.io.api.${group === "" ? "core" : group.split(".")[0]}.${version}`;
}

export function isKubernetesProtobuf(body: Uint8Array): boolean {
  return body.length >= 4 && MAGIC.every((b, i) => body[i] === b);
}

/** The object a protobuf request body carries, in its JSON form with apiVersion and kind. */
export function decodeKubernetesProtobuf(body: Uint8Array): Record<string, unknown> {
  if (!isKubernetesProtobuf(body)) throw new ProtobufError("missing the k8s protobuf magic prefix");
  try {
    let apiVersion = "";
    let kind = "";
    let raw: Uint8Array | undefined;
    for (const f of fields(body.subarray(4))) {
      if (f.num === 1 && f.bytes) {
        for (const t of fields(f.bytes)) {
          if (t.num === 1) apiVersion = Buffer.from(t.bytes!).toString("utf8");
          else if (t.num === 2) kind = Buffer.from(t.bytes!).toString("utf8");
        }
      } else if (f.num === 2 && f.bytes) raw = f.bytes;
      else if (f.num === 3 && f.bytes && f.bytes.length)
        throw new ProtobufError("content encodings are not supported");
    }
    if (!kind) throw new ProtobufError("the object has no kind");
    // Options kinds (DeleteOptions, …) live in meta/v1 but are registered in every group
    // version: kubectl drain sends a "v1" DeleteOptions.
    const type = [`${packageOf(apiVersion)}.${kind}`, `${META}.${kind}`].find((t) => schema[t]);
    if (!type) throw new ProtobufError(`no protobuf schema for ${apiVersion}, Kind=${kind}`);
    const obj = decodeMessage(type, raw ?? new Uint8Array(), 0) as Record<string, unknown>;
    return { apiVersion, kind, ...obj };
  } catch (e) {
    if (e instanceof WireError) throw new ProtobufError(e.message);
    throw e;
  }
}
