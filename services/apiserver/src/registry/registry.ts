// The generic registry: create/get/list/update/patch/delete for every resource type, with the
// semantics kube-apiserver's generic store gives them (optimistic concurrency, generation,
// finalizers and graceful deletion, namespace lifecycle), over the durable Store.
import { randomUUID } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import * as api from "@klab/api";
import type { FieldError, KubeObject, ResourceType } from "@klab/api";
import type { Obj, Store } from "../storage/store.ts";
import { errors, ApiError } from "./errors.ts";
import { hooksFor, type HookMap } from "./hooks.ts";
import {
  groupResourceOf,
  initialStatus,
  prepareCreate,
  scaleOf,
  specOf,
  tracksGeneration,
} from "./strategy.ts";

type Map = Record<string, unknown>;

export interface WriteOptions {
  dryRun?: boolean;
}

export interface DeleteOptions extends WriteOptions {
  gracePeriodSeconds?: number;
  propagationPolicy?: string;
  preconditions?: { uid?: string; resourceVersion?: string };
}

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
}

export interface ListResult {
  items: Obj[];
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}

export type Subresource = "status" | "scale" | "finalize" | undefined;

export type ObjectPredicate = (o: Obj) => boolean;

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

function meta(o: Obj): Map {
  return o.metadata as Map;
}

export class Registry {
  constructor(
    private readonly store: Store,
    private readonly hooks: HookMap | undefined,
  ) {}

  get resourceVersion(): string {
    return String(this.store.resourceVersion);
  }

  private nsKey(rt: ResourceType, ns: string | undefined): string {
    return rt.namespaced ? (ns ?? "") : "";
  }

  get(rt: ResourceType, ns: string | undefined, name: string): Obj {
    const o = this.store.get(groupResourceOf(rt), this.nsKey(rt, ns), name);
    if (!o) throw errors.notFound(rt.group, rt.plural, name);
    return o;
  }

  /** Builds the predicate of a list or watch; throws 400 on a malformed selector. */
  predicate(rt: ResourceType, labelSelector?: string, fieldSelector?: string): ObjectPredicate {
    const tests: ObjectPredicate[] = [];
    if (labelSelector) {
      let sel: ReturnType<typeof api.parseLabelSelector>;
      try {
        sel = api.parseLabelSelector(labelSelector);
      } catch (e) {
        throw errors.badRequest((e as Error).message);
      }
      tests.push((o) => api.labelsMatch(sel, (o.metadata.labels ?? {}) as Record<string, string>));
    }
    if (fieldSelector) {
      let sel: ReturnType<typeof api.parseFieldSelector>;
      try {
        sel = api.parseFieldSelector(fieldSelector, rt);
      } catch (e) {
        throw errors.badRequest((e as Error).message);
      }
      tests.push((o) => api.fieldSelectorMatches(sel, o as KubeObject));
    }
    if (tests.length === 0) return () => true;
    return (o) => tests.every((t) => t(o));
  }

  list(rt: ResourceType, ns: string | undefined, opts: ListOptions = {}): ListResult {
    const pred = this.predicate(rt, opts.labelSelector, opts.fieldSelector);
    const all = this.store.list(groupResourceOf(rt), rt.namespaced ? ns : undefined);
    let start = 0;
    let rv = this.resourceVersion;
    if (opts.continue) {
      const token = decodeContinue(opts.continue);
      rv = token.rv;
      const after = token.start;
      start = all.findIndex((o) => `${o.metadata.namespace ?? ""}/${o.metadata.name}` > after);
      if (start < 0) start = all.length;
    }
    const limit = opts.limit && opts.limit > 0 ? opts.limit : Infinity;
    const items: Obj[] = [];
    let i = start;
    for (; i < all.length && items.length < limit; i++) if (pred(all[i]!)) items.push(all[i]!);
    const result: ListResult = { items, resourceVersion: rv };
    if (items.length === limit && i < all.length) {
      let more = false;
      let remaining = 0;
      for (let j = i; j < all.length; j++)
        if (pred(all[j]!)) {
          more = true;
          remaining++;
        }
      if (more) {
        const last = items[items.length - 1]!;
        result.continue = encodeContinue(rv, `${last.metadata.namespace ?? ""}/${last.metadata.name}`);
        if (!opts.labelSelector && !opts.fieldSelector) result.remainingItemCount = remaining;
      }
    }
    return result;
  }

  private checkNamespace(rt: ResourceType, ns: string | undefined, name: string, creating: boolean): void {
    if (!rt.namespaced) return;
    if (!ns) throw errors.badRequest("the server could not find the requested resource");
    const nsObj = this.store.get("namespaces", "", ns);
    if (!nsObj) throw errors.notFound("", "namespaces", ns);
    if (
      creating &&
      (meta(nsObj).deletionTimestamp || (nsObj.status as Map | undefined)?.phase === "Terminating")
    ) {
      throw errors.forbidden(
        rt.group,
        rt.plural,
        name,
        `unable to create new content in namespace ${ns} because it is being terminated`,
      );
    }
  }

  private checkTypeMeta(
    rt: ResourceType,
    body: Obj,
    expectKind = rt.kind,
    expectApiVersion = rt.apiVersion,
  ): void {
    if (body.apiVersion && body.apiVersion !== expectApiVersion) {
      throw errors.badRequest(
        `the API version in the data (${body.apiVersion}) does not match the expected API version (${expectApiVersion})`,
      );
    }
    if (body.kind && body.kind !== expectKind) {
      throw errors.badRequest(
        `the kind in the data (${body.kind}) does not match the expected kind (${expectKind})`,
      );
    }
    body.apiVersion = expectApiVersion;
    body.kind = expectKind;
  }

  private validate(rt: ResourceType, obj: Obj, old?: Obj): void {
    api.applyDefaults(obj as KubeObject);
    const errs = api.validateObject(obj as KubeObject, old as KubeObject | undefined);
    this.reject(rt, obj, errs);
  }

  private reject(rt: ResourceType, obj: Obj, errs: FieldError[] | void): void {
    if (errs && errs.length) throw errors.invalid(api.invalidStatus(rt, obj.metadata.name ?? "", errs));
  }

  create(rt: ResourceType, ns: string | undefined, body: Obj, opts: WriteOptions = {}): Obj {
    this.checkTypeMeta(rt, body);
    const obj = structuredClone(body);
    const m = (obj.metadata ??= {}) as Map;
    if (rt.namespaced) {
      if (m.namespace && ns && m.namespace !== ns) {
        throw errors.badRequest(
          "the namespace of the provided object does not match the namespace sent on the request",
        );
      }
      m.namespace = ns;
    } else {
      delete m.namespace;
    }
    if (!m.name && typeof m.generateName === "string" && m.generateName) {
      m.name = m.generateName + randomSuffix();
    }
    const name = (m.name as string | undefined) ?? "";
    this.checkNamespace(rt, ns, name, true);
    delete m.resourceVersion;
    delete m.deletionTimestamp;
    delete m.deletionGracePeriodSeconds;
    delete m.selfLink;
    m.uid = randomUUID();
    m.creationTimestamp = now();
    if (tracksGeneration(rt)) m.generation = 1;
    else delete m.generation;
    initialStatus(rt, obj);
    prepareCreate(rt, obj);
    this.validate(rt, obj);
    const resource = groupResourceOf(rt);
    if (this.store.get(resource, this.nsKey(rt, ns), name))
      throw errors.alreadyExists(rt.group, rt.plural, name);
    for (const h of hooksFor(this.hooks, rt.group, rt.plural)) {
      this.reject(rt, obj, h.beforeCreate?.(obj as KubeObject, { dryRun: !!opts.dryRun }));
    }
    if (opts.dryRun) return obj;
    return this.store.put(resource, obj, undefined);
  }

  /** PUT of the object, of its status, or of a namespace's finalize subresource. */
  update(
    rt: ResourceType,
    ns: string | undefined,
    name: string,
    body: Obj,
    sub: Subresource,
    opts: WriteOptions = {},
  ): Obj {
    this.checkTypeMeta(rt, body);
    const bm = (body.metadata ??= {}) as Map;
    if (bm.name !== undefined && bm.name !== name) {
      throw errors.badRequest(
        `the name of the object (${String(bm.name)}) does not match the name on the URL (${name})`,
      );
    }
    if (rt.namespaced && bm.namespace !== undefined && bm.namespace !== "" && bm.namespace !== ns) {
      throw errors.badRequest(
        "the namespace of the provided object does not match the namespace sent on the request",
      );
    }
    const current = this.get(rt, ns, name);
    if (
      bm.resourceVersion !== undefined &&
      bm.resourceVersion !== "" &&
      bm.resourceVersion !== current.metadata.resourceVersion
    ) {
      throw errors.modified(rt.group, rt.plural, name);
    }
    let next: Obj;
    if (sub === "status") {
      next = { ...structuredClone(current), status: structuredClone(body.status) };
    } else if (sub === "finalize") {
      next = structuredClone(current);
      const spec = ((next.spec as Map | undefined) ?? {}) as Map;
      spec.finalizers = ((body.spec as Map | undefined)?.finalizers as string[] | undefined) ?? [];
      next.spec = spec;
    } else {
      next = structuredClone(body);
      const nm = next.metadata as Map;
      const cm = meta(current);
      for (const k of [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
      ]) {
        if (cm[k] === undefined) delete nm[k];
        else nm[k] = cm[k];
      }
      nm.name = name;
      if (rt.namespaced) nm.namespace = ns;
      else delete nm.namespace;
      if (rt.subresources.includes("status")) {
        if (current.status === undefined) delete next.status;
        else next.status = structuredClone(current.status);
      }
      if (groupResourceOf(rt) === "namespaces") next.spec = structuredClone(current.spec);
      if (tracksGeneration(rt) && !isDeepStrictEqual(specOf(next), specOf(current))) {
        nm.generation = ((cm.generation as number | undefined) ?? 0) + 1;
      }
    }
    (next.metadata as Map).resourceVersion = current.metadata.resourceVersion;
    if (groupResourceOf(rt) === "services" && sub === undefined) {
      api.preserveAllocatedServiceFields(next as unknown as api.Service, current as unknown as api.Service);
    }
    this.validate(rt, next, current);
    for (const h of hooksFor(this.hooks, rt.group, rt.plural)) {
      this.reject(
        rt,
        next,
        h.beforeUpdate?.(next as KubeObject, current as KubeObject, { dryRun: !!opts.dryRun }),
      );
    }
    if (isDeepStrictEqual(next, current)) return current;
    if (opts.dryRun) return next;
    if (this.lastFinalizerRemoved(rt, next, current)) return this.remove(rt, next);
    return this.store.put(groupResourceOf(rt), next, current);
  }

  patch(
    rt: ResourceType,
    ns: string | undefined,
    name: string,
    apply: (current: unknown) => unknown,
    sub: Subresource,
    opts: WriteOptions = {},
  ): Obj {
    const current = this.get(rt, ns, name);
    const patched = apply(structuredClone(current));
    if (typeof patched !== "object" || patched === null || Array.isArray(patched)) {
      throw errors.badRequest("the patch did not produce an object");
    }
    const p = patched as Obj;
    if (typeof p.metadata !== "object" || p.metadata === null) p.metadata = {};
    return this.update(rt, ns, name, p, sub, opts);
  }

  getScale(rt: ResourceType, ns: string | undefined, name: string): Obj {
    return scaleOf(this.get(rt, ns, name));
  }

  updateScale(
    rt: ResourceType,
    ns: string | undefined,
    name: string,
    scale: Obj,
    opts: WriteOptions = {},
  ): Obj {
    if (scale.kind && scale.kind !== "Scale") {
      throw errors.badRequest(
        `the kind in the data (${scale.kind}) does not match the expected kind (Scale)`,
      );
    }
    const replicas = (scale.spec as Map | undefined)?.replicas;
    if (typeof replicas !== "number" || !Number.isInteger(replicas) || replicas < 0) {
      throw errors.invalid(
        api.invalidStatus({ ...rt, kind: "Scale" }, name, [
          {
            type: "FieldValueInvalid",
            field: "spec.replicas",
            badValue: replicas,
            detail: "must be greater than or equal to 0",
          } as FieldError,
        ]),
      );
    }
    const current = this.get(rt, ns, name);
    const rv = scale.metadata?.resourceVersion;
    if (rv && rv !== current.metadata.resourceVersion) throw errors.modified(rt.group, rt.plural, name);
    const next = structuredClone(current);
    (next.spec as Map).replicas = replicas;
    return scaleOf(this.update(rt, ns, name, next, undefined, opts));
  }

  /** pods/binding: the scheduler's way to set spec.nodeName, once. */
  bind(ns: string, name: string, binding: Obj, opts: WriteOptions = {}): void {
    const rt = api.findResource("", "v1", "pods")!;
    const target = (binding.target ?? {}) as { name?: string; kind?: string };
    if (!target.name) throw errors.badRequest("target.name is required");
    const pod = this.get(rt, ns, name);
    const spec = (pod.spec ?? {}) as Map;
    if (meta(pod).deletionTimestamp)
      throw errors.conflict("", "pods", name, "pod is being deleted, cannot be assigned to a host");
    if (spec.nodeName) {
      throw errors.conflict(
        "",
        "pods",
        name,
        `pod ${name} is already assigned to node "${String(spec.nodeName)}"`,
      );
    }
    const next = structuredClone(pod);
    (next.spec as Map).nodeName = target.name;
    if (opts.dryRun) return;
    this.store.put("pods", next, pod);
  }

  /**
   * kube's shouldDeleteDuringUpdate: an update of an object being deleted that takes away its last
   * finalizer deletes it. A pod in graceful deletion (status updates from its kubelet) stays until
   * its kubelet confirms with a delete of grace 0.
   */
  private lastFinalizerRemoved(rt: ResourceType, next: Obj, current: Obj): boolean {
    if (!meta(next).deletionTimestamp || !this.finalized(rt, next) || this.finalized(rt, current))
      return false;
    if (groupResourceOf(rt) === "pods" && (meta(next).deletionGracePeriodSeconds ?? 0) !== 0) return false;
    return true;
  }

  /** True when nothing holds the object back any more (finalizers, a namespace's spec.finalizers). */
  private finalized(rt: ResourceType, o: Obj): boolean {
    if (((meta(o).finalizers as string[] | undefined) ?? []).length) return false;
    if (
      groupResourceOf(rt) === "namespaces" &&
      (((o.spec as Map | undefined)?.finalizers as string[] | undefined) ?? []).length
    ) {
      return false;
    }
    return true;
  }

  private remove(rt: ResourceType, o: Obj): Obj {
    const current = this.store.get(
      groupResourceOf(rt),
      this.nsKey(rt, o.metadata.namespace),
      o.metadata.name!,
    )!;
    const gone = this.store.delete(groupResourceOf(rt), current);
    for (const h of hooksFor(this.hooks, rt.group, rt.plural)) {
      try {
        h.afterDelete?.(gone as KubeObject);
      } catch {
        // The object is gone whatever a hook thinks; hooks log their own failures.
      }
    }
    return gone;
  }

  delete(rt: ResourceType, ns: string | undefined, name: string, opts: DeleteOptions = {}): Obj {
    const current = this.get(rt, ns, name);
    const cm = meta(current);
    if (opts.preconditions?.uid && opts.preconditions.uid !== cm.uid) {
      throw errors.conflict(
        rt.group,
        rt.plural,
        name,
        `Precondition failed: UID in precondition: ${opts.preconditions.uid}, UID in object meta: ${String(cm.uid)}`,
      );
    }
    if (
      opts.preconditions?.resourceVersion &&
      opts.preconditions.resourceVersion !== current.metadata.resourceVersion
    ) {
      throw errors.conflict(
        rt.group,
        rt.plural,
        name,
        `Precondition failed: ResourceVersion in precondition: ${opts.preconditions.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion}`,
      );
    }
    const resource = groupResourceOf(rt);
    const next = structuredClone(current);
    const nm = meta(next);
    let graceful = false;

    if (resource === "namespaces") {
      next.status = { ...((next.status as Map | undefined) ?? {}), phase: "Terminating" };
      graceful = true;
    }
    if (resource === "pods") {
      const spec = (current.spec ?? {}) as Map;
      const phase = (current.status as Map | undefined)?.phase;
      const grace =
        opts.gracePeriodSeconds ??
        (typeof spec.terminationGracePeriodSeconds === "number" ? spec.terminationGracePeriodSeconds : 30);
      // Only a kubelet can confirm a pod stopped; a pod with no (known) node has nothing to wait for.
      const onNode = typeof spec.nodeName === "string" && !!this.store.get("nodes", "", spec.nodeName);
      if (grace > 0 && onNode && phase !== "Succeeded" && phase !== "Failed") {
        graceful = true;
        if (!nm.deletionTimestamp || (nm.deletionGracePeriodSeconds as number) > grace) {
          nm.deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString().replace(/\.\d+Z$/, "Z");
          nm.deletionGracePeriodSeconds = grace;
        }
      }
    }
    const finalizers = [...((nm.finalizers as string[] | undefined) ?? [])];
    if (!nm.deletionTimestamp) {
      if (opts.propagationPolicy === "Foreground" && !finalizers.includes("foregroundDeletion")) {
        finalizers.push("foregroundDeletion");
      } else if (opts.propagationPolicy === "Orphan" && !finalizers.includes("orphan")) {
        finalizers.push("orphan");
      }
    }
    if (finalizers.length) nm.finalizers = finalizers;
    if (finalizers.length || graceful) {
      nm.deletionTimestamp ??= now();
      nm.deletionGracePeriodSeconds ??= 0;
      if (!this.finalized(rt, next) || (resource === "pods" && graceful)) {
        if (opts.dryRun || isDeepStrictEqual(next, current)) return next;
        return this.store.put(resource, next, current);
      }
    }
    if (opts.dryRun) return current;
    return this.remove(rt, current);
  }

  deleteCollection(
    rt: ResourceType,
    ns: string | undefined,
    list: ListOptions,
    opts: DeleteOptions = {},
  ): Obj[] {
    const { items } = this.list(rt, ns, {
      labelSelector: list.labelSelector,
      fieldSelector: list.fieldSelector,
    });
    const out: Obj[] = [];
    for (const o of items) {
      try {
        out.push(this.delete(rt, o.metadata.namespace, o.metadata.name!, opts));
      } catch (e) {
        if (!(e instanceof ApiError && e.code === 404)) throw e;
      }
    }
    return out;
  }
}

const ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789";

/** The 5 characters kube appends to generateName (utilrand.String: no vowels, no confusables). */
function randomSuffix(): string {
  let s = "";
  for (let i = 0; i < 5; i++) s += ALPHANUMS[Math.floor(Math.random() * ALPHANUMS.length)];
  return s;
}

function encodeContinue(rv: string, start: string): string {
  return Buffer.from(JSON.stringify({ v: "meta.k8s.io/v1", rv, start })).toString("base64url");
}

function decodeContinue(token: string): { rv: string; start: string } {
  try {
    const t = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as {
      rv?: unknown;
      start?: unknown;
    };
    if (typeof t.rv === "string" && typeof t.start === "string") return { rv: t.rv, start: t.start };
  } catch {
    // fall through
  }
  throw errors.badRequest(
    "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
  );
}
