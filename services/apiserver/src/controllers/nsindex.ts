// A per-namespace view of an informer's cache, so a controller looking for "the pods of this
// namespace" does not scan every pod in the cluster.
import type { KubeObject } from "@klab/api";
import type { Informer } from "@klab/client";
import { keyOf } from "./runtime.ts";

export class NamespaceIndex<T extends KubeObject> {
  private readonly byNamespace = new Map<string, Map<string, T>>();

  constructor(informer: Informer<T>) {
    for (const o of informer.list()) this.put(o);
    // Registered before the controllers' handlers, so the index is current when they run.
    informer.prependListener("add", (o) => this.put(o));
    informer.prependListener("update", (o) => this.put(o));
    informer.prependListener("delete", (o) => this.remove(o));
  }

  private put(o: T): void {
    const ns = o.metadata.namespace ?? "";
    let m = this.byNamespace.get(ns);
    if (!m) this.byNamespace.set(ns, (m = new Map()));
    m.set(keyOf(o), o);
  }

  private remove(o: T): void {
    const m = this.byNamespace.get(o.metadata.namespace ?? "");
    m?.delete(keyOf(o));
    if (m?.size === 0) this.byNamespace.delete(o.metadata.namespace ?? "");
  }

  list(namespace: string | undefined): T[] {
    return [...(this.byNamespace.get(namespace ?? "")?.values() ?? [])];
  }
}
