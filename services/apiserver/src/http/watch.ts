// Watch streams: HTTP 200, chunked, one JSON event per line ({"type","object"}), from a
// resourceVersion (or from a synthetic snapshot of current state), with bookmarks only when asked
// for and the stream closed at timeoutSeconds.
import type { ServerResponse } from "node:http";
import type { ResourceType } from "@klab/api";
import type { ObjectPredicate } from "../registry/registry.ts";
import type { Obj, Store, StoreEvent } from "../storage/store.ts";
import { groupResourceOf } from "../registry/strategy.ts";
import { partialMetadata, toTable, type IncludeObject } from "./table.ts";
import type { Representation } from "./negotiate.ts";

export interface WatchRequest {
  rt: ResourceType;
  namespace?: string;
  predicate: ObjectPredicate;
  /** Changes after this resourceVersion; undefined = start from a snapshot of current state. */
  fromRv?: number;
  /** Send the snapshot as ADDED events first (watch without RV, RV "0", or sendInitialEvents). */
  initialEvents: boolean;
  bookmarks: boolean;
  timeoutSeconds: number;
  representation: Representation;
  include: IncludeObject;
}

/** A serialisation cache shared by every watcher of one event, for cheap fan-out. */
const encoded = new WeakMap<Obj, string>();
function jsonOf(o: Obj): string {
  let s = encoded.get(o);
  if (s === undefined) {
    s = JSON.stringify(o);
    encoded.set(o, s);
  }
  return s;
}

/** Slow consumers are cut off (kube-apiserver closes watchers whose buffer overflows). */
const MAX_BUFFERED = 32 * 1024 * 1024;
const BOOKMARK_EVERY_MS = 30_000;

export class WatchStream {
  private unsubscribe?: () => void;
  private timers: NodeJS.Timeout[] = [];
  private firstTable = true;
  private closed = false;
  private lastRv: number;

  constructor(
    private readonly store: Store,
    private readonly res: ServerResponse,
    private readonly w: WatchRequest,
    private readonly onClose: () => void,
  ) {
    this.lastRv = store.resourceVersion;
  }

  private matches(o: Obj | undefined): boolean {
    if (!o) return false;
    if (this.w.rt.namespaced && this.w.namespace !== undefined && o.metadata.namespace !== this.w.namespace)
      return false;
    return this.w.predicate(o);
  }

  private encode(type: string, o: Obj): string {
    const rep = this.w.representation;
    if (rep.as === "Table" && type !== "BOOKMARK") {
      const withColumns = this.firstTable;
      this.firstTable = false;
      const table = toTable(this.w.rt, [o], {
        apiVersion: rep.apiVersion,
        include: this.w.include,
        withColumns,
        listMeta: { resourceVersion: o.metadata.resourceVersion },
      });
      return `{"type":"${type}","object":${JSON.stringify(table)}}\n`;
    }
    if (rep.as === "PartialObjectMetadata" && type !== "BOOKMARK") {
      return `{"type":"${type}","object":${JSON.stringify(partialMetadata(o, rep.apiVersion))}}\n`;
    }
    return `{"type":"${type}","object":${jsonOf(o)}}\n`;
  }

  private write(line: string): void {
    if (this.closed) return;
    if (this.res.writableLength > MAX_BUFFERED) {
      this.close();
      return;
    }
    this.res.write(line);
  }

  private bookmark(initialEventsEnd: boolean): void {
    const metadata: Record<string, unknown> = { resourceVersion: String(this.lastRv) };
    if (initialEventsEnd) metadata.annotations = { "k8s.io/initial-events-end": "true" };
    const obj = { kind: this.w.rt.kind, apiVersion: this.w.rt.apiVersion, metadata } as Obj;
    this.write(this.encode("BOOKMARK", obj));
  }

  private onEvent = (e: StoreEvent): void => {
    this.lastRv = e.rv;
    const now = e.type !== "DELETED" && this.matches(e.object);
    const before = e.type !== "ADDED" && this.matches(e.prev);
    // An object that starts or stops matching the selector is ADDED or DELETED for this watcher.
    if (e.type === "ADDED" && now) this.write(this.encode("ADDED", e.object));
    else if (e.type === "MODIFIED") {
      if (now && before) this.write(this.encode("MODIFIED", e.object));
      else if (now) this.write(this.encode("ADDED", e.object));
      else if (before) this.write(this.encode("DELETED", e.object));
    } else if (e.type === "DELETED" && before) this.write(this.encode("DELETED", e.object));
  };

  /** Call only after fromRv has been checked against the store's window. */
  start(snapshot: Obj[] | undefined): void {
    this.res.writeHead(200, {
      "content-type": "application/json",
      "transfer-encoding": "chunked",
      "cache-control": "no-cache, private",
    });
    this.res.flushHeaders();
    let from = this.w.fromRv ?? this.store.resourceVersion;
    if (snapshot) {
      from = this.store.resourceVersion;
      this.lastRv = from;
      if (this.w.initialEvents)
        for (const o of snapshot) if (this.matches(o)) this.write(this.encode("ADDED", o));
      if (this.w.initialEvents && this.w.bookmarks) this.bookmark(true);
    }
    this.unsubscribe = this.store.watch(groupResourceOf(this.w.rt), from, this.onEvent);
    if (this.w.bookmarks) {
      const t = setInterval(() => this.bookmark(false), BOOKMARK_EVERY_MS);
      t.unref();
      this.timers.push(t);
    }
    const timeout = setTimeout(() => this.close(), this.w.timeoutSeconds * 1000);
    timeout.unref();
    this.timers.push(timeout);
    this.res.on("close", () => this.close());
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    for (const t of this.timers) clearTimeout(t);
    if (!this.res.writableEnded) this.res.end();
    this.onClose();
  }
}
