// Content negotiation: which representation the client asked for in Accept, and how to read
// the request body from its Content-Type.
import { parse as parseYaml } from "yaml";
import { errors } from "../registry/errors.ts";
import { decodeKubernetesProtobuf, ProtobufError } from "../protobuf/decode.ts";

export type Representation =
  | { as: "object" }
  | { as: "Table"; apiVersion: string }
  | { as: "PartialObjectMetadata"; apiVersion: string };

interface MediaRange {
  type: string;
  params: Record<string, string>;
}

function parseAccept(header: string | undefined): MediaRange[] {
  if (!header) return [{ type: "*/*", params: {} }];
  return header.split(",").map((part) => {
    const [type, ...ps] = part.split(";").map((s) => s.trim());
    const params: Record<string, string> = {};
    for (const p of ps) {
      const eq = p.indexOf("=");
      if (eq > 0) params[p.slice(0, eq).trim()] = p.slice(eq + 1).trim();
    }
    return { type: (type ?? "").toLowerCase(), params };
  });
}

const JSONISH = new Set(["application/json", "application/*", "*/*", "application/yaml"]);

/** Picks the first representation we can serve, in the client's order; 406 if none. */
export function negotiate(header: string | undefined): Representation {
  for (const m of parseAccept(header)) {
    if (!JSONISH.has(m.type)) continue;
    const as = m.params.as;
    if (!as) return { as: "object" };
    if (m.params.g !== "meta.k8s.io" || (m.params.v !== "v1" && m.params.v !== "v1beta1")) continue;
    const apiVersion = `meta.k8s.io/${m.params.v}`;
    if (as === "Table") return { as: "Table", apiVersion };
    if (as === "PartialObjectMetadata" || as === "PartialObjectMetadataList")
      return { as: "PartialObjectMetadata", apiVersion };
  }
  throw errors.notAcceptable("application/json, application/yaml");
}

/** For discovery: which aggregated discovery version the client accepts, if any. */
export function wantsAggregatedDiscovery(header: string | undefined): string | undefined {
  for (const m of parseAccept(header)) {
    if (m.type !== "application/json") continue;
    if (m.params.g === "apidiscovery.k8s.io" && m.params.as === "APIGroupDiscoveryList") {
      if (m.params.v === "v2" || m.params.v === "v2beta1") return m.params.v;
      continue;
    }
    if (!m.params.as) return undefined;
  }
  return undefined;
}

export function mediaType(contentType: string | undefined): string {
  return (contentType ?? "").split(";")[0]!.trim().toLowerCase();
}

/** JSON or YAML body → value, with kube-apiserver's wording for undecodable input. */
export function decodeBody(body: Buffer | undefined, contentType: string | undefined): unknown {
  const text = body ? body.toString("utf8") : "";
  const type = mediaType(contentType);
  if (type === "application/yaml") {
    try {
      return parseYaml(text);
    } catch (e) {
      throw errors.badRequest(`error converting YAML to JSON: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  if (type === "application/vnd.kubernetes.protobuf") {
    try {
      return decodeKubernetesProtobuf(body ?? new Uint8Array());
    } catch (e) {
      if (e instanceof ProtobufError)
        throw errors.badRequest(`unable to decode the protobuf body: ${e.message}`);
      throw e;
    }
  }
  if (text.trim() === "") throw errors.badRequest("Object 'Kind' is missing in ''");
  try {
    return JSON.parse(text);
  } catch (e) {
    throw errors.badRequest(`couldn't get version/kind; json parse error: ${(e as Error).message}`);
  }
}

/** A body that must be an object (create, update). */
export function decodeObject(
  body: Buffer | undefined,
  contentType: string | undefined,
): Record<string, unknown> {
  const v = decodeBody(body, contentType);
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    const shown = (body?.toString("utf8") ?? "").slice(0, 200);
    throw errors.badRequest(`Object 'Kind' is missing in '${shown}'`);
  }
  return v as Record<string, unknown>;
}
