// A minimal OpenAPI v3 surface: one document per group-version whose PATCH operations carry
// x-kubernetes-group-version-kind and the fieldValidation parameter. That is what kubectl 1.32
// checks before it trusts the server to validate (`apply`/`create` with the default --validate).
import { createHash } from "node:crypto";
import type { ResourceType } from "@klab/api";
import { groupVersions } from "./discovery.ts";

function gvPath(group: string, version: string): string {
  return group === "" ? `api/${version}` : `apis/${group}/${version}`;
}

const QUERY_PARAMS = ["dryRun", "fieldManager", "fieldValidation", "force"].map((name) => ({
  name,
  in: "query",
  schema: { type: name === "force" ? "boolean" : "string" },
  uniqueItems: true,
}));

export interface OpenApiV3 {
  index: object;
  /** "api/v1", "apis/apps/v1" → document */
  docs: Map<string, object>;
}

export function buildOpenApiV3(types: ResourceType[], gitVersion: string): OpenApiV3 {
  const docs = new Map<string, object>();
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const { group, versions } of groupVersions(types)) {
    for (const version of versions) {
      const p = gvPath(group, version);
      const opPaths: Record<string, object> = {};
      for (const r of types.filter((t) => t.group === group && t.version === version)) {
        const base = r.namespaced
          ? `/${p}/namespaces/{namespace}/${r.plural}/{name}`
          : `/${p}/${r.plural}/{name}`;
        const gvk = { group: r.group, version: r.version, kind: r.kind };
        opPaths[base] = {
          patch: {
            tags: [p],
            operationId: `patch${r.namespaced ? "Namespaced" : ""}${r.kind}`,
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk,
            parameters: QUERY_PARAMS,
            responses: {},
          },
        };
      }
      const doc = {
        openapi: "3.0.0",
        info: { title: "Kubernetes", version: gitVersion },
        paths: opPaths,
        components: { schemas: {} },
      };
      docs.set(p, doc);
      const hash = createHash("sha512").update(JSON.stringify(doc)).digest("hex").slice(0, 128).toUpperCase();
      paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${hash}` };
    }
  }
  return { index: { paths }, docs };
}

function lengthDelimited(field: number, payload: Buffer): Buffer {
  const len: number[] = [];
  let n = payload.length;
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    len.push(b);
  } while (n);
  return Buffer.concat([Buffer.from([(field << 3) | 2, ...len]), payload]);
}

/**
 * /openapi/v2 as kubectl asks for it (gnostic protobuf): an empty document. kubectl only reaches it
 * to validate kinds the v3 documents do not name, and with no schema for a kind it leaves the
 * verdict to the REST mapping ("no matches for kind"), as against a real cluster.
 */
export function openApiV2Protobuf(gitVersion: string): Buffer {
  const info = Buffer.concat([
    lengthDelimited(1, Buffer.from("Kubernetes")),
    lengthDelimited(2, Buffer.from(gitVersion)),
  ]);
  return Buffer.concat([
    lengthDelimited(1, Buffer.from("2.0")),
    lengthDelimited(2, info),
    lengthDelimited(8, Buffer.alloc(0)),
  ]);
}

export function openApiV2Json(gitVersion: string): object {
  return { swagger: "2.0", info: { title: "Kubernetes", version: gitVersion }, paths: {} };
}
