// The garbage collector: an object whose owners are all gone is deleted (in the background, or
// in the foreground when its owner was deleted that way); an owner deleted with
// propagationPolicy=Foreground keeps its `foregroundDeletion` finalizer until its blocking
// dependents are gone; one deleted with Orphan has its dependents' references removed first.
// Absence is confirmed with a live GET, since a cache can lag a create.
import { resourceForKind, resourceTypes, type KubeObject, type OwnerReference } from "@klab/api";
import type { Informer } from "@klab/client";
import type { ControllerContext, RunningController } from "../context.ts";
import { Controller, isNotFound } from "../runtime.ts";

const COMPONENT = "garbage-collector-controller";
export const FOREGROUND = "foregroundDeletion";
export const ORPHAN = "orphan";

interface Ref {
  apiVersion: string;
  plural: string;
  namespace?: string;
  name: string;
}

function encode(r: Ref): string {
  return JSON.stringify([r.apiVersion, r.plural, r.namespace ?? "", r.name]);
}

function decode(key: string): Ref {
  const [apiVersion, plural, namespace, name] = JSON.parse(key) as string[];
  return { apiVersion: apiVersion!, plural: plural!, namespace: namespace || undefined, name: name! };
}

export function gcController(ctx: ControllerContext): RunningController {
  const log = ctx.logger.child({ controller: COMPONENT });
  const c = new Controller(COMPONENT, reconcile, log, ctx.metrics, 2);
  const informers: Array<[Informer<KubeObject>, (typeof resourceTypes)[number]]> = [];
  /** uid -> where the object lives */
  const byUid = new Map<string, Ref>();
  /** owner uid -> dependents */
  const dependents = new Map<string, Set<string>>();

  for (const rt of resourceTypes) {
    // Events are many and never own or are owned.
    if (rt.plural === "events") continue;
    const inf = ctx.informers.get<KubeObject>(rt.apiVersion, rt.plural);
    informers.push([inf, rt]);
    const refOf = (o: KubeObject): Ref => ({
      apiVersion: rt.apiVersion,
      plural: rt.plural,
      namespace: o.metadata.namespace,
      name: o.metadata.name!,
    });
    const track = (o: KubeObject, old?: KubeObject) => {
      const key = encode(refOf(o));
      if (o.metadata.uid) byUid.set(o.metadata.uid, refOf(o));
      for (const r of old?.metadata.ownerReferences ?? []) dependents.get(r.uid)?.delete(key);
      for (const r of o.metadata.ownerReferences ?? []) {
        let s = dependents.get(r.uid);
        if (!s) dependents.set(r.uid, (s = new Set()));
        s.add(key);
      }
      if (o.metadata.ownerReferences?.length) c.enqueue(key);
      if (
        o.metadata.deletionTimestamp &&
        (o.metadata.finalizers ?? []).some((f) => f === FOREGROUND || f === ORPHAN)
      )
        c.enqueue(key);
    };
    inf.on("add", (o) => track(o));
    inf.on("update", (o, old) => track(o, old));
    inf.on("delete", (o) => {
      const key = encode(refOf(o));
      if (o.metadata.uid) {
        byUid.delete(o.metadata.uid);
        // Its dependents may now be orphans.
        for (const d of dependents.get(o.metadata.uid) ?? []) c.enqueue(d);
        dependents.delete(o.metadata.uid);
      }
      for (const r of o.metadata.ownerReferences ?? []) {
        dependents.get(r.uid)?.delete(key);
        // A foreground-deleting owner may be waiting for this dependent.
        const owner = byUid.get(r.uid);
        if (owner) c.enqueue(encode(owner));
      }
    });
  }

  function cached(ref: Ref): KubeObject | undefined {
    for (const [inf, rt] of informers) {
      if (rt.apiVersion === ref.apiVersion && rt.plural === ref.plural)
        return inf.get(ref.namespace, ref.name);
    }
    return undefined;
  }

  /** Whether the owner a reference names exists (same uid), asking the server when the cache does not know it. */
  async function ownerExists(dep: KubeObject, r: OwnerReference): Promise<KubeObject | undefined> {
    const known = byUid.get(r.uid);
    if (known) {
      const o = cached(known);
      if (o?.metadata.uid === r.uid) return o;
    }
    const rt = resourceForKind(r.apiVersion, r.kind);
    // An owner of a kind this server does not serve cannot be looked up; like kube's GC with an
    // unresolvable owner, leave the dependent alone rather than delete it on a guess.
    if (!rt) return { apiVersion: r.apiVersion, kind: r.kind, metadata: { name: r.name, uid: r.uid } };
    const live = await ctx.client.get<KubeObject>(
      rt.apiVersion,
      rt.plural,
      rt.namespaced ? dep.metadata.namespace : undefined,
      r.name,
    );
    return live?.metadata.uid === r.uid ? live : undefined;
  }

  async function removeFinalizer(ref: Ref, o: KubeObject, finalizer: string): Promise<void> {
    const finalizers = (o.metadata.finalizers ?? []).filter((f) => f !== finalizer);
    await ctx.client.patch(ref.apiVersion, ref.plural, ref.namespace, ref.name, {
      metadata: {
        finalizers: finalizers.length ? finalizers : null,
        resourceVersion: o.metadata.resourceVersion,
      },
    });
  }

  async function reconcile(key: string): Promise<void> {
    const ref = decode(key);
    const obj = cached(ref);
    if (!obj) return;
    const deps = [...(dependents.get(obj.metadata.uid ?? "") ?? [])].map((k) => ({
      ref: decode(k),
      obj: cached(decode(k)),
    }));

    // An owner being deleted in the foreground: delete blocking dependents, wait for them.
    if (obj.metadata.deletionTimestamp && obj.metadata.finalizers?.includes(FOREGROUND)) {
      let blocking = 0;
      for (const d of deps) {
        if (!d.obj) continue;
        const r = d.obj.metadata.ownerReferences?.find((x) => x.uid === obj.metadata.uid);
        if (r?.blockOwnerDeletion) blocking++;
        if (!d.obj.metadata.deletionTimestamp) {
          await ctx.client
            .delete(d.ref.apiVersion, d.ref.plural, d.ref.namespace, d.ref.name, {
              propagationPolicy: "Foreground",
            })
            .catch((err) => (isNotFound(err) ? undefined : Promise.reject(err)));
        }
      }
      if (blocking === 0) await removeFinalizer(ref, obj, FOREGROUND);
      else c.enqueueAfter(key, 1_000);
      return;
    }
    // An owner being deleted with orphan propagation: cut its dependents loose first.
    if (obj.metadata.deletionTimestamp && obj.metadata.finalizers?.includes(ORPHAN)) {
      for (const d of deps) {
        if (!d.obj) continue;
        const refs = (d.obj.metadata.ownerReferences ?? []).filter((x) => x.uid !== obj.metadata.uid);
        await ctx.client
          .patch(d.ref.apiVersion, d.ref.plural, d.ref.namespace, d.ref.name, {
            metadata: { ownerReferences: refs.length ? refs : null },
          })
          .catch((err) => (isNotFound(err) ? undefined : Promise.reject(err)));
      }
      await removeFinalizer(ref, obj, ORPHAN);
      return;
    }

    const owners = obj.metadata.ownerReferences ?? [];
    if (!owners.length || obj.metadata.deletionTimestamp) return;
    const absent = new Set<string>();
    let foregroundOwner = false;
    for (const r of owners) {
      const o = await ownerExists(obj, r);
      if (!o) absent.add(r.uid);
      else if (o.metadata.deletionTimestamp && o.metadata.finalizers?.includes(FOREGROUND))
        foregroundOwner = true;
    }
    if (absent.size === 0) return;
    if (absent.size < owners.length) {
      // Some owners remain: only the dangling references go.
      await ctx.client.patch(ref.apiVersion, ref.plural, ref.namespace, ref.name, {
        metadata: { ownerReferences: owners.filter((r) => !absent.has(r.uid)) },
      });
      return;
    }
    log.info(
      { object: `${ref.plural}/${ref.namespace ? ref.namespace + "/" : ""}${ref.name}` },
      "deleting object whose owners are gone",
    );
    await ctx.client
      .delete(ref.apiVersion, ref.plural, ref.namespace, ref.name, {
        propagationPolicy: foregroundOwner ? "Foreground" : "Background",
      })
      .catch((err) => (isNotFound(err) ? undefined : Promise.reject(err)));
  }

  return {
    name: COMPONENT,
    start: () => {
      c.start();
      for (const [inf] of informers)
        for (const o of inf.list())
          if (o.metadata.ownerReferences?.length || o.metadata.deletionTimestamp)
            c.enqueue(
              encode({
                apiVersion: inf.apiVersion,
                plural: inf.plural,
                namespace: o.metadata.namespace,
                name: o.metadata.name!,
              }),
            );
    },
    stop: () => c.stop(),
  };
}
