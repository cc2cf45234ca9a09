/**
 * An informer: a local cache of one resource kept in step with the API server by list + watch,
 * as client-go's reflector and store do. It relists after `410 Gone` and after any broken
 * watch, and reports the differences as add/update/delete, so consumers stay level-triggered.
 */
import { EventEmitter } from "node:events";
import type { KubeObject } from "@klab/api";
import { ApiError, type KubeClient, type Watch, type WatchEvent } from "./client.ts";

export interface InformerOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Longest wait between reconnect attempts. */
  maxBackoffMs?: number;
  /** Server-side watch timeout, after which the informer re-watches from its last version. */
  watchTimeoutSeconds?: number;
}

export interface InformerEvents<T> {
  add: [obj: T];
  update: [obj: T, old: T];
  delete: [obj: T];
  /** After the first list, and after every relist. */
  sync: [];
  error: [err: Error];
}

export function objectKey(obj: KubeObject): string {
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name!;
}

export class Informer<T extends KubeObject = KubeObject> extends EventEmitter<InformerEvents<T>> {
  private readonly store = new Map<string, T>();
  private resourceVersion = "";
  private watch?: Watch;
  private stopped = false;
  private synced = false;
  private firstSync?: Promise<void>;

  constructor(
    private readonly client: KubeClient,
    readonly apiVersion: string,
    readonly plural: string,
    private readonly options: InformerOptions = {},
  ) {
    super();
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  list(): T[] {
    return [...this.store.values()];
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.store.get(namespace ? `${namespace}/${name}` : name);
  }

  /** Starts list + watch; resolves once the cache holds the first full list. */
  start(): Promise<void> {
    if (!this.firstSync) {
      this.firstSync = new Promise((resolve) => this.once("sync", resolve));
      void this.run();
    }
    return this.firstSync;
  }

  stop(): void {
    this.stopped = true;
    this.watch?.stop();
  }

  private async run(): Promise<void> {
    let backoff = 250;
    const maxBackoff = this.options.maxBackoffMs ?? 10_000;
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
        }
        backoff = 250;
        needList = await this.watchOnce();
      } catch (err) {
        if (this.stopped) return;
        if (this.listenerCount("error") > 0) this.emit("error", err as Error);
        needList = true;
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, maxBackoff);
      }
    }
  }

  private async relist(): Promise<void> {
    const { namespace, labelSelector, fieldSelector } = this.options;
    const list = await this.client.list<T>(this.apiVersion, this.plural, {
      namespace,
      labelSelector,
      fieldSelector,
    });
    const seen = new Set<string>();
    for (const item of list.items) {
      // List items omit apiVersion/kind; consumers expect whole objects.
      item.apiVersion ??= list.apiVersion ?? this.apiVersion;
      item.kind ??= (list.kind ?? "").replace(/List$/, "");
      const key = objectKey(item);
      seen.add(key);
      this.apply(key, item);
    }
    for (const [key, old] of this.store) {
      if (!seen.has(key)) {
        this.store.delete(key);
        this.emit("delete", old);
      }
    }
    this.resourceVersion = list.metadata.resourceVersion ?? "";
    this.synced = true;
    this.emit("sync");
  }

  private apply(key: string, obj: T): void {
    const old = this.store.get(key);
    this.store.set(key, obj);
    if (!old) this.emit("add", obj);
    else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) this.emit("update", obj, old);
  }

  /** One watch from the last known version; returns true when a relist is needed. */
  private async watchOnce(): Promise<boolean> {
    const { namespace, labelSelector, fieldSelector } = this.options;
    let gone = false;
    this.watch = this.client.watch<T>(
      this.apiVersion,
      this.plural,
      {
        namespace,
        labelSelector,
        fieldSelector,
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: this.options.watchTimeoutSeconds ?? 300 + Math.floor(Math.random() * 300),
      },
      (event: WatchEvent<T>) => {
        if (event.type === "ERROR") {
          const code = (event.object as unknown as { code?: number }).code;
          if (code === 410) gone = true;
          this.watch?.stop();
          return;
        }
        const obj = event.object;
        if (obj.metadata?.resourceVersion) this.resourceVersion = obj.metadata.resourceVersion;
        if (event.type === "BOOKMARK") return;
        const key = objectKey(obj);
        if (event.type === "DELETED") {
          const old = this.store.get(key);
          this.store.delete(key);
          this.emit("delete", old ?? obj);
        } else {
          this.apply(key, obj);
        }
      },
    );
    try {
      await this.watch.done;
    } catch (err) {
      if (err instanceof ApiError && err.code === 410) return true;
      throw err;
    }
    return gone;
  }
}
