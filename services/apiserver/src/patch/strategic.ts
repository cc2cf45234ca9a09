// Strategic merge patch (application/strategic-merge-patch+json) as kubectl apply sends it:
// lists merge by their patch merge key, null deletes, and the directives $patch (replace, delete,
// merge), $retainKeys, $setElementOrder/<list> and $deleteFromPrimitiveList/<list>.
//
// The merge keys are the patchMergeKey tags of the Kubernetes Go types for the kinds klab serves.
// A list field not named here is atomic (replaced whole), as tolerations and args are in Kubernetes.
type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonMap = { [k: string]: Json };

/** field name → merge key; "" means a list of primitives merged as a set (patchStrategy:merge). */
const MERGE_KEYS: Record<string, string | ((items: Json[]) => string)> = {
  containers: "name",
  initContainers: "name",
  ephemeralContainers: "name",
  volumes: "name",
  imagePullSecrets: "name",
  env: "name",
  resourceClaims: "name",
  schedulingGates: "name",
  volumeMounts: "mountPath",
  volumeDevices: "devicePath",
  hostAliases: "ip",
  conditions: "type",
  addresses: "type",
  ownerReferences: "uid",
  topologySpreadConstraints: "topologyKey",
  finalizers: "",
  podCIDRs: "",
  // Container ports merge by containerPort, Service ports by port.
  ports: (items) => (items.some((i) => isMap(i) && "containerPort" in i) ? "containerPort" : "port"),
};

export class PatchError extends Error {}

function isMap(v: unknown): v is JsonMap {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function mergeKeyFor(field: string, items: Json[]): string | undefined {
  const k = MERGE_KEYS[field];
  if (k === undefined) return undefined;
  return typeof k === "function" ? k(items) : k;
}

export function strategicMergePatch(original: unknown, patch: unknown): unknown {
  if (!isMap(patch)) throw new PatchError("strategic merge patch must be a JSON object");
  const orig = isMap(original) ? original : {};
  const out = mergeMap(structuredClone(orig) as JsonMap, patch);
  return out ?? {};
}

function mergeMap(original: JsonMap, patch: JsonMap): JsonMap | undefined {
  const directive = patch["$patch"];
  if (directive === "delete") return undefined;
  if (directive === "replace") {
    const copy: JsonMap = {};
    for (const [k, v] of Object.entries(patch)) if (k !== "$patch") copy[k] = stripDirectives(v);
    return copy;
  }
  if (directive !== undefined && directive !== "merge")
    throw new PatchError(`unknown patch type: ${String(directive)}`);

  const orders = new Map<string, Json[]>();
  for (const [key, value] of Object.entries(patch)) {
    if (key === "$patch" || key === "$retainKeys") continue;
    if (key.startsWith("$setElementOrder/")) {
      if (!Array.isArray(value)) throw new PatchError(`${key} must be a list`);
      orders.set(key.slice("$setElementOrder/".length), value);
      continue;
    }
    if (key.startsWith("$deleteFromPrimitiveList/")) {
      const field = key.slice("$deleteFromPrimitiveList/".length);
      if (!Array.isArray(value)) throw new PatchError(`${key} must be a list`);
      const cur = original[field];
      if (Array.isArray(cur)) original[field] = cur.filter((x) => !value.some((d) => d === x));
      continue;
    }
    if (key.startsWith("$")) throw new PatchError(`unknown directive ${key}`);
    if (value === null) {
      delete original[key];
      continue;
    }
    const cur = original[key];
    if (isMap(value)) {
      const merged = mergeMap(isMap(cur) ? cur : {}, value);
      if (merged === undefined) delete original[key];
      else original[key] = merged;
    } else if (Array.isArray(value)) {
      original[key] = mergeList(key, Array.isArray(cur) ? cur : [], value);
    } else {
      original[key] = value;
    }
  }
  for (const [field, order] of orders) {
    const cur = original[field];
    if (Array.isArray(cur)) original[field] = applyOrder(field, cur, order);
  }
  const retain = patch["$retainKeys"];
  if (retain !== undefined) {
    if (!Array.isArray(retain)) throw new PatchError("$retainKeys must be a list");
    for (const k of Object.keys(original)) if (!retain.includes(k)) delete original[k];
  }
  return original;
}

function stripDirectives(v: Json): Json {
  if (Array.isArray(v)) return v.filter((x) => !(isMap(x) && x["$patch"] !== undefined)).map(stripDirectives);
  if (isMap(v)) {
    const o: JsonMap = {};
    for (const [k, x] of Object.entries(v)) if (!k.startsWith("$")) o[k] = stripDirectives(x);
    return o;
  }
  return v;
}

function mergeList(field: string, original: Json[], patch: Json[]): Json[] {
  const key = mergeKeyFor(field, [...patch, ...original]);
  if (key === undefined) return stripDirectives(patch) as Json[];
  if (patch.some((p) => isMap(p) && p["$patch"] === "replace")) {
    return stripDirectives(patch.filter((p) => !(isMap(p) && p["$patch"] === "replace"))) as Json[];
  }
  if (key === "") {
    const out = [...original];
    for (const p of patch) if (!out.some((o) => o === p)) out.push(p);
    return out;
  }
  const out = [...original];
  for (const p of patch) {
    if (!isMap(p)) throw new PatchError(`${field}: list items must be objects with the merge key "${key}"`);
    const id = p[key];
    const idx = out.findIndex((o) => isMap(o) && o[key] === id && id !== undefined);
    if (p["$patch"] === "delete") {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    if (idx >= 0) {
      const merged = mergeMap(out[idx] as JsonMap, p);
      if (merged === undefined) out.splice(idx, 1);
      else out[idx] = merged;
    } else {
      out.push(stripDirectives(p));
    }
  }
  return out;
}

/**
 * $setElementOrder lists the merge keys in the wanted order; items it does not name (present only on
 * the server) keep their place relative to the ones around them, after the ordered ones.
 */
function applyOrder(field: string, list: Json[], order: Json[]): Json[] {
  const key = mergeKeyFor(field, [...order, ...list]);
  const idOf = (x: Json): Json => (key && isMap(x) ? (x[key] ?? null) : isMap(x) ? null : x);
  const wanted = order.map((o) => (isMap(o) && key ? (o[key] ?? null) : o));
  const rank = (x: Json): number => {
    const i = wanted.findIndex((w) => w === idOf(x));
    return i < 0 ? Number.MAX_SAFE_INTEGER : i;
  };
  return list
    .map((x, i) => ({ x, i, r: rank(x) }))
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .map((e) => e.x);
}
