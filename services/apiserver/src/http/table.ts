// Server-side printing: the meta.k8s.io Table kubectl asks for, with the columns real
// Kubernetes prints per kind (printTable from @klab/api), and row objects per includeObject.
import * as api from "@klab/api";
import type { KubeObject, ResourceType } from "@klab/api";
import type { Obj } from "../storage/store.ts";

export type IncludeObject = "None" | "Metadata" | "Object";

export interface ColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

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

type Printer = (
  rt: ResourceType,
  objects: KubeObject[],
  opts: { wide: boolean; now: Date },
) => { columnDefinitions: ColumnDefinition[]; rows: Array<{ cells: unknown[] }> };

/** kube-apiserver's default table convertor, for kinds without printer columns. */
const defaultPrinter: Printer = (_rt, objects) => ({
  columnDefinitions: [
    {
      name: "Name",
      type: "string",
      format: "name",
      description:
        "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
      priority: 0,
    },
    {
      name: "Created At",
      type: "date",
      format: "",
      description:
        "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
      priority: 0,
    },
  ],
  rows: objects.map((o) => ({ cells: [o.metadata.name ?? "", o.metadata.creationTimestamp ?? ""] })),
});

function printer(): Printer {
  // TODO(until @klab/api lands printTable): drop the fallback.
  return (api as unknown as { printTable?: Printer }).printTable ?? defaultPrinter;
}

export interface TableOptions {
  apiVersion: string;
  include: IncludeObject;
  /** Watch events after the first carry no column definitions (kubectl reuses the first ones). */
  withColumns: boolean;
  listMeta?: Record<string, unknown>;
}

export function toTable(rt: ResourceType, objects: Obj[], opts: TableOptions): Record<string, unknown> {
  const printed = printer()(rt, objects as KubeObject[], { wide: true, now: new Date() });
  const rows = printed.rows.map((row, i) => {
    const r: Record<string, unknown> = { cells: row.cells };
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
