// Server-side printing: the meta.k8s.io Table kubectl asks for, with the columns real
// Kubernetes prints per kind (printTable from @klab/api), and row objects per includeObject.
import * as api from "@klab/api";
import type { KubeObject, ResourceType } from "@klab/api";
import type { Obj } from "../storage/store.ts";

export type IncludeObject = "None" | "Metadata" | "Object";

export function partialMetadata(o: Obj, apiVersion = "meta.k8s.io/v1"): Obj {
  return { kind: "PartialObjectMetadata", apiVersion, metadata: o.metadata };
}

function rowObject(o: Obj, include: IncludeObject): Obj | undefined {
  if (include === "None") return undefined;
  if (include === "Object") return o;
  return partialMetadata(o);
}

export function parseIncludeObject(v: unknown): IncludeObject {
  return v === "None" || v === "Object" ? v : "Metadata";
}

export interface TableOptions {
  apiVersion: string;
  include: IncludeObject;
  /** Watch events after the first carry no column definitions (kubectl reuses the first ones). */
  withColumns: boolean;
  listMeta?: Record<string, unknown>;
}

export function toTable(rt: ResourceType, objects: Obj[], opts: TableOptions): Record<string, unknown> {
  // Every column, wide ones included (priority 1): kubectl picks what to show.
  const printed = api.printTable(rt, objects as KubeObject[], { wide: true, now: new Date() });
  const rows = printed.rows.map((row, i) => {
    const r: Record<string, unknown> = { cells: row.cells };
    if (row.conditions) r.conditions = row.conditions;
    const obj = rowObject(objects[i]!, opts.include);
    if (obj) r.object = obj;
    return r;
  });
  return {
    kind: "Table",
    apiVersion: opts.apiVersion,
    metadata: opts.listMeta ?? {},
    columnDefinitions: opts.withColumns ? printed.columnDefinitions : [],
    rows,
  };
}
