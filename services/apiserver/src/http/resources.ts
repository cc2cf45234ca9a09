// The REST surface of every resource type: /api/v1/... and /apis/<group>/<version>/..., verbs
// mapped as kube-apiserver maps them, answers in JSON, Table or PartialObjectMetadata.
import type { FastifyReply, FastifyRequest } from "fastify";
import * as api from "@klab/api";
import type { ResourceType } from "@klab/api";
import { errors } from "../registry/errors.ts";
import type { DeleteOptions, Registry, Subresource, WriteOptions } from "../registry/registry.ts";
import type { Obj, Store } from "../storage/store.ts";
import { TooOldResourceVersion } from "../storage/store.ts";
import { jsonMergePatch, jsonPatch } from "../patch/merge.ts";
import { PatchError, strategicMergePatch } from "../patch/strategic.ts";
import { pruneUnknownFields } from "../protobuf/decode.ts";
import { decodeBody, decodeObject, mediaType, negotiate, type Representation } from "./negotiate.ts";
import { parseIncludeObject, partialMetadata, toTable } from "./table.ts";
import { WatchStream } from "./watch.ts";

export interface ResourcePath {
  group: string;
  version: string;
  watch: boolean;
  namespace?: string;
  plural: string;
  name?: string;
  subresource?: string;
}

/** Segments after /api/v1 or /apis/<g>/<v> → what they address; undefined if malformed. */
export function parseResourcePath(group: string, version: string, segs: string[]): ResourcePath | undefined {
  let watch = false;
  if (segs[0] === "watch") {
    watch = true;
    segs = segs.slice(1);
  }
  if (segs.length === 0 || segs.some((s) => s === "")) return undefined;
  if (
    segs[0] === "namespaces" &&
    segs.length >= 3 &&
    !(segs.length === 3 && (segs[2] === "status" || segs[2] === "finalize"))
  ) {
    if (segs.length > 5) return undefined;
    return {
      group,
      version,
      watch,
      namespace: segs[1],
      plural: segs[2]!,
      name: segs[3],
      subresource: segs[4],
    };
  }
  if (segs.length > 3) return undefined;
  return { group, version, watch, plural: segs[0]!, name: segs[1], subresource: segs[2] };
}

const PATCH_TYPES = [
  "application/json-patch+json",
  "application/merge-patch+json",
  "application/strategic-merge-patch+json",
];

type Query = Record<string, string | string[] | undefined>;

function q(query: Query, key: string): string | undefined {
  const v = query[key];
  return Array.isArray(v) ? v[0] : v;
}

function intParam(query: Query, key: string): number | undefined {
  const v = q(query, key);
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw errors.badRequest(`${key}: invalid value "${v}": must be an integer`);
  return n;
}

function writeOptions(query: Query): WriteOptions {
  const dryRun = query.dryRun;
  const values = dryRun === undefined ? [] : Array.isArray(dryRun) ? dryRun : [dryRun];
  for (const v of values) {
    if (v !== "All") throw errors.badRequest(`dryRun: Unsupported value: "${v}": supported values: "All"`);
  }
  return { dryRun: values.length > 0 };
}

export interface ResourceHandlerDeps {
  registry: Registry;
  store: Store;
  onWatch(delta: number): void;
}

export class ResourceHandler {
  constructor(private readonly d: ResourceHandlerDeps) {}

  async handle(req: FastifyRequest, reply: FastifyReply, p: ResourcePath): Promise<unknown> {
    const rt = api.findResource(p.group, p.version, p.plural);
    if (!rt) throw errors.resourceNotFound();
    if (!rt.namespaced && p.namespace !== undefined) throw errors.resourceNotFound();
    const query = req.query as Query;
    const method = req.method;
    const ns = p.namespace;
    const sub = p.subresource;

    if (p.watch && method !== "GET") throw errors.methodNotAllowed();
    if (p.name === undefined) {
      if (method === "GET") {
        const rep = negotiate(req.headers.accept);
        const watch = p.watch || q(query, "watch") === "true" || q(query, "watch") === "1";
        if (watch) return this.watch(req, reply, rt, ns, undefined, rep);
        return this.list(reply, rt, ns, query, rep);
      }
      if (method === "POST") {
        if (rt.namespaced && ns === undefined) throw errors.methodNotAllowed();
        const body = this.body(req, reply, rt);
        const created = this.d.registry.create(rt, ns, body, writeOptions(query));
        return this.send(reply, 201, created);
      }
      if (method === "DELETE") {
        if (!rt.verbs.includes("deletecollection")) throw errors.methodNotAllowed();
        const gone = this.d.registry.deleteCollection(
          rt,
          ns,
          { labelSelector: q(query, "labelSelector"), fieldSelector: q(query, "fieldSelector") },
          this.deleteOptions(req, query),
        );
        return this.send(reply, 200, {
          kind: rt.listKind,
          apiVersion: rt.apiVersion,
          metadata: { resourceVersion: this.d.registry.resourceVersion },
          items: gone,
        });
      }
      throw errors.methodNotAllowed();
    }

    const name = p.name;
    if (sub === undefined) {
      switch (method) {
        case "GET": {
          const rep = negotiate(req.headers.accept);
          if (p.watch) return this.watch(req, reply, rt, ns, name, rep);
          const o = this.d.registry.get(rt, ns, name);
          return this.send(reply, 200, this.represent(rt, [o], rep, query, undefined, true));
        }
        case "PUT": {
          const body = this.body(req, reply, rt);
          return this.send(
            reply,
            200,
            this.d.registry.update(rt, ns, name, body, undefined, writeOptions(query)),
          );
        }
        case "PATCH":
          return this.send(reply, 200, this.patch(req, reply, rt, ns, name, undefined, query));
        case "DELETE":
          return this.send(reply, 200, this.d.registry.delete(rt, ns, name, this.deleteOptions(req, query)));
        default:
          throw errors.methodNotAllowed();
      }
    }

    if (sub === "status" && rt.subresources.includes("status")) {
      if (method === "GET") return this.send(reply, 200, this.d.registry.get(rt, ns, name));
      if (method === "PUT") {
        const body = this.body(req, reply, rt);
        return this.send(
          reply,
          200,
          this.d.registry.update(rt, ns, name, body, "status", writeOptions(query)),
        );
      }
      if (method === "PATCH")
        return this.send(reply, 200, this.patch(req, reply, rt, ns, name, "status", query));
      throw errors.methodNotAllowed();
    }
    if (sub === "scale" && rt.subresources.includes("scale")) {
      if (method === "GET") return this.send(reply, 200, this.d.registry.getScale(rt, ns, name));
      if (method === "PUT") {
        const body = this.body(req, reply, rt, "Scale", "autoscaling/v1");
        return this.send(reply, 200, this.d.registry.updateScale(rt, ns, name, body, writeOptions(query)));
      }
      if (method === "PATCH") {
        const scale = this.d.registry.getScale(rt, ns, name);
        const patched = this.applyPatch(req, scale) as Obj;
        if (typeof patched === "object" && patched !== null) this.checkFields(req, reply, patched);
        return this.send(reply, 200, this.d.registry.updateScale(rt, ns, name, patched, writeOptions(query)));
      }
      throw errors.methodNotAllowed();
    }
    if (sub === "finalize" && rt.group === "" && rt.plural === "namespaces") {
      if (method !== "PUT") throw errors.methodNotAllowed();
      const body = this.body(req, reply, rt);
      return this.send(
        reply,
        200,
        this.d.registry.update(rt, ns, name, body, "finalize", writeOptions(query)),
      );
    }
    if (sub === "binding" && rt.group === "" && rt.plural === "pods") {
      if (method !== "POST") throw errors.methodNotAllowed();
      const body = decodeObject(req.body as Buffer, req.headers["content-type"]) as Obj;
      this.d.registry.bind(ns!, name, body, writeOptions(query));
      return this.send(reply, 201, {
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Success",
        code: 201,
      });
    }
    throw errors.resourceNotFound();
  }

  /**
   * fieldValidation (Strict | Warn, the default | Ignore): unknown fields fail the request, or are
   * dropped with a Warning header each, or dropped silently, as kube-apiserver's decoder does.
   */
  private checkFields(req: FastifyRequest, reply: FastifyReply, obj: Record<string, unknown>): void {
    const mode = q(req.query as Query, "fieldValidation") ?? "Warn";
    if (!["Strict", "Warn", "Ignore"].includes(mode)) {
      throw errors.badRequest(`fieldValidation must be one of "Ignore", "Warn", or "Strict", got "${mode}"`);
    }
    const unknown = pruneUnknownFields(obj);
    if (!unknown?.length) return;
    if (mode === "Strict") {
      const version = String(obj.apiVersion ?? "")
        .split("/")
        .pop();
      const kind = String(obj.kind ?? "");
      throw errors.badRequest(
        `${kind} in version "${version}" cannot be handled as a ${kind}: strict decoding error: ${unknown
          .map((f) => `unknown field "${f}"`)
          .join(", ")}`,
      );
    }
    if (mode === "Warn") {
      reply.header(
        "warning",
        unknown.map((f) => `299 - ${JSON.stringify(`unknown field "${f}"`)}`),
      );
    }
  }

  /** The request body of a create or update, its unknown fields handled per fieldValidation. */
  private body(
    req: FastifyRequest,
    reply: FastifyReply,
    rt: ResourceType,
    kind = rt.kind,
    apiVersion = rt.apiVersion,
  ): Obj {
    const body = decodeObject(req.body as Buffer, req.headers["content-type"]);
    // A body of another kind is refused by the registry, with kube's words for it.
    if ((body.apiVersion ?? apiVersion) !== apiVersion || (body.kind ?? kind) !== kind) return body as Obj;
    body.apiVersion = apiVersion;
    body.kind = kind;
    this.checkFields(req, reply, body);
    return body as Obj;
  }

  /**
   * Answers only once every write so far is durable: an acknowledged write survives a crash, and
   * a read never shows a write that a crash could still undo.
   */
  private async send(reply: FastifyReply, code: number, body: unknown): Promise<FastifyReply> {
    await this.d.store.durable();
    return reply.code(code).type("application/json").send(JSON.stringify(body));
  }

  private deleteOptions(req: FastifyRequest, query: Query): DeleteOptions {
    const opts: DeleteOptions = { ...writeOptions(query) };
    const body = req.body as Buffer | undefined;
    if (body && body.length > 0) {
      const b = decodeObject(body, req.headers["content-type"]) as {
        gracePeriodSeconds?: number;
        propagationPolicy?: string;
        preconditions?: { uid?: string; resourceVersion?: string };
        dryRun?: string[];
      };
      if (b.gracePeriodSeconds !== undefined) opts.gracePeriodSeconds = b.gracePeriodSeconds;
      if (b.propagationPolicy !== undefined) opts.propagationPolicy = b.propagationPolicy;
      if (b.preconditions) opts.preconditions = b.preconditions;
      if (Array.isArray(b.dryRun) && b.dryRun.includes("All")) opts.dryRun = true;
    }
    const grace = intParam(query, "gracePeriodSeconds");
    if (grace !== undefined) opts.gracePeriodSeconds = grace;
    const pp = q(query, "propagationPolicy");
    if (pp) opts.propagationPolicy = pp;
    if (opts.propagationPolicy && !["Orphan", "Background", "Foreground"].includes(opts.propagationPolicy)) {
      throw errors.badRequest(
        `propagationPolicy: Unsupported value: "${opts.propagationPolicy}": supported values: "Foreground", "Background", "Orphan"`,
      );
    }
    if (opts.gracePeriodSeconds !== undefined && opts.gracePeriodSeconds < 0) opts.gracePeriodSeconds = 0;
    return opts;
  }

  private applyPatch(req: FastifyRequest, current: unknown): unknown {
    const type = mediaType(req.headers["content-type"]);
    if (!PATCH_TYPES.includes(type)) throw errors.unsupportedMediaType(PATCH_TYPES);
    let patch: unknown;
    try {
      patch = decodeBody(req.body as Buffer, "application/json");
    } catch {
      const text = (req.body as Buffer | undefined)?.toString("utf8") ?? "";
      try {
        JSON.parse(text);
      } catch (e) {
        throw errors.badRequest(`error decoding patch: ${(e as Error).message}`);
      }
      throw errors.badRequest("error decoding patch: empty patch");
    }
    try {
      if (type === "application/json-patch+json") return jsonPatch(current, patch);
      if (type === "application/merge-patch+json") {
        if (typeof patch !== "object" || patch === null || Array.isArray(patch)) {
          throw new PatchError("merge patch must be a JSON object");
        }
        return jsonMergePatch(current, patch);
      }
      return strategicMergePatch(current, patch);
    } catch (e) {
      if (e instanceof PatchError) throw errors.badRequest(e.message);
      throw e;
    }
  }

  private patch(
    req: FastifyRequest,
    reply: FastifyReply,
    rt: ResourceType,
    ns: string | undefined,
    name: string,
    sub: Subresource,
    query: Query,
  ): Obj {
    const apply = (cur: unknown) => {
      const patched = this.applyPatch(req, cur);
      if (typeof patched === "object" && patched !== null && !Array.isArray(patched)) {
        this.checkFields(req, reply, patched as Record<string, unknown>);
      }
      return patched;
    };
    return this.d.registry.patch(rt, ns, name, apply, sub, writeOptions(query));
  }

  /** Object(s) in the representation asked for; single=true for a GET of one object. */
  private represent(
    rt: ResourceType,
    items: Obj[],
    rep: Representation,
    query: Query,
    listMeta: Record<string, unknown> | undefined,
    single: boolean,
  ): unknown {
    if (rep.as === "Table") {
      return toTable(rt, items, {
        apiVersion: rep.apiVersion,
        include: parseIncludeObject(q(query, "includeObject")),
        withColumns: true,
        listMeta: listMeta ?? { resourceVersion: items[0]?.metadata.resourceVersion },
      });
    }
    if (rep.as === "PartialObjectMetadata") {
      if (single) return partialMetadata(items[0]!, rep.apiVersion);
      return {
        kind: "PartialObjectMetadataList",
        apiVersion: rep.apiVersion,
        metadata: listMeta,
        items: items.map((o) => partialMetadata(o, rep.apiVersion)),
      };
    }
    if (single) return items[0];
    return { kind: rt.listKind, apiVersion: rt.apiVersion, metadata: listMeta, items };
  }

  private list(
    reply: FastifyReply,
    rt: ResourceType,
    ns: string | undefined,
    query: Query,
    rep: Representation,
  ): Promise<FastifyReply> {
    const result = this.d.registry.list(rt, ns, {
      labelSelector: q(query, "labelSelector"),
      fieldSelector: q(query, "fieldSelector"),
      limit: intParam(query, "limit"),
      continue: q(query, "continue"),
    });
    const listMeta: Record<string, unknown> = { resourceVersion: result.resourceVersion };
    if (result.continue) listMeta.continue = result.continue;
    if (result.remainingItemCount !== undefined) listMeta.remainingItemCount = result.remainingItemCount;
    return this.send(reply, 200, this.represent(rt, result.items, rep, query, listMeta, false));
  }

  private async watch(
    req: FastifyRequest,
    reply: FastifyReply,
    rt: ResourceType,
    ns: string | undefined,
    name: string | undefined,
    rep: Representation,
  ): Promise<unknown> {
    const query = req.query as Query;
    let fieldSelector = q(query, "fieldSelector");
    if (name !== undefined)
      fieldSelector = fieldSelector ? `${fieldSelector},metadata.name=${name}` : `metadata.name=${name}`;
    const predicate = this.d.registry.predicate(rt, q(query, "labelSelector"), fieldSelector);
    const rvParam = q(query, "resourceVersion") ?? "";
    const sendInitial = q(query, "sendInitialEvents");
    let fromRv: number | undefined;
    if (rvParam !== "" && rvParam !== "0") {
      if (!/^\d+$/.test(rvParam)) throw errors.badRequest(`invalid resource version: ${rvParam}`);
      fromRv = Number(rvParam);
    }
    if (sendInitial === "true" && fromRv !== undefined) {
      throw errors.invalid(
        api.invalidStatus(rt, "", [
          {
            type: "FieldValueForbidden",
            field: "sendInitialEvents",
            detail: 'sendInitialEvents is forbidden for watch unless the resourceVersion is unset or "0"',
          } as api.FieldError,
        ]),
      );
    }
    if (fromRv !== undefined) {
      try {
        this.d.store.checkWatchable(fromRv);
      } catch (e) {
        if (e instanceof TooOldResourceVersion) throw errors.expired(e.message);
        throw e;
      }
    }
    // Start from committed state only, like every other answer.
    await this.d.store.durable();
    const initialEvents = fromRv === undefined && sendInitial !== "false";
    const snapshot =
      fromRv === undefined
        ? this.d.store.list(
            rt.group === "" ? rt.plural : `${rt.plural}.${rt.group}`,
            rt.namespaced ? ns : undefined,
          )
        : undefined;
    const requested = intParam(query, "timeoutSeconds");
    // Like kube-apiserver's --min-request-timeout: an unbounded watch still ends, between 30 and 60 minutes.
    const timeoutSeconds = requested && requested > 0 ? requested : 1800 + Math.floor(Math.random() * 1800);
    reply.hijack();
    this.d.onWatch(1);
    const stream = new WatchStream(
      this.d.store,
      reply.raw,
      {
        rt,
        namespace: ns,
        predicate,
        fromRv,
        initialEvents,
        bookmarks: q(query, "allowWatchBookmarks") === "true",
        timeoutSeconds,
        representation: rep,
        include: parseIncludeObject(q(query, "includeObject")),
      },
      () => this.d.onWatch(-1),
    );
    stream.start(snapshot);
    return reply;
  }
}
