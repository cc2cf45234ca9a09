// Durable object storage: SQLite (WAL, synchronous=FULL) is the source of truth. Writes apply to
// the in-memory copy at once and are committed in groups: every write of one event-loop turn goes
// into one transaction (one fsync) together with the global resourceVersion. Callers acknowledge
// a write only after `durable()` resolves, and watchers hear of it only then, so a kill -9 loses
// no acknowledged write. The in-memory copy serves reads, and a window of recent changes serves
// watches (like kube-apiserver's watch cache in front of etcd).
import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

export type Obj = {
  apiVersion: string;
  kind: string;
  metadata: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    [k: string]: unknown;
  };
  [k: string]: unknown;
};

export type EventType = "ADDED" | "MODIFIED" | "DELETED";

export interface StoreEvent {
  type: EventType;
  rv: number;
  /** GroupResource, e.g. "services", "deployments.apps". */
  resource: string;
  object: Obj;
  /** The object before the change (MODIFIED and DELETED), for selector transitions. */
  prev?: Obj;
}

export type Listener = (e: StoreEvent) => void;

export class TooOldResourceVersion extends Error {
  constructor(
    readonly requested: number,
    readonly oldest: number,
  ) {
    super(`too old resource version: ${requested} (${oldest})`);
  }
}

function keyOf(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export class Store {
  private db: Database.Database;
  private objects = new Map<string, Map<string, Obj>>();
  private log: StoreEvent[] = [];
  private logStart = 0;
  /** Watches can resume from any resourceVersion >= this one. */
  private oldestRv: number;
  private rv: number;
  private listeners = new Map<string, Set<Listener>>();
  /** Writes applied in memory and waiting for the next group commit. */
  private pending: Array<{ event: StoreEvent; ns: string; name: string; data?: string }> = [];
  private batch?: { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void };
  private failed?: Error;
  private stmts: {
    put: Database.Statement;
    del: Database.Statement;
    setRv: Database.Statement;
  };

  constructor(
    stateDir: string,
    private readonly window = 100_000,
  ) {
    mkdirSync(stateDir, { recursive: true });
    this.db = new Database(join(stateDir, "state.db"));
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = FULL");
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS objects (
        resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
        rv INTEGER NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (resource, namespace, name)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
      INSERT OR IGNORE INTO meta (key, value) VALUES ('resourceVersion', 1);
    `);
    this.rv = (
      this.db.prepare("SELECT value FROM meta WHERE key='resourceVersion'").get() as { value: number }
    ).value;
    for (const row of this.db
      .prepare("SELECT resource, namespace, name, data FROM objects")
      .iterate() as Iterable<{
      resource: string;
      namespace: string;
      name: string;
      data: string;
    }>) {
      this.bucket(row.resource).set(keyOf(row.namespace, row.name), JSON.parse(row.data) as Obj);
    }
    this.oldestRv = this.rv;
    this.stmts = {
      put: this.db.prepare(
        "INSERT OR REPLACE INTO objects (resource, namespace, name, rv, data) VALUES (?, ?, ?, ?, ?)",
      ),
      del: this.db.prepare("DELETE FROM objects WHERE resource = ? AND namespace = ? AND name = ?"),
      setRv: this.db.prepare("UPDATE meta SET value = ? WHERE key = 'resourceVersion'"),
    };
  }

  get resourceVersion(): number {
    return this.rv;
  }

  private bucket(resource: string): Map<string, Obj> {
    let b = this.objects.get(resource);
    if (!b) this.objects.set(resource, (b = new Map()));
    return b;
  }

  get(resource: string, namespace: string, name: string): Obj | undefined {
    return this.objects.get(resource)?.get(keyOf(namespace, name));
  }

  /** Keys in order, rebuilt only after a key is added or removed (updates keep the order). */
  private sortedKeys = new Map<string, string[]>();

  private keysOf(resource: string, b: Map<string, Obj>): string[] {
    let keys = this.sortedKeys.get(resource);
    if (!keys) {
      keys = [...b.keys()].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
      this.sortedKeys.set(resource, keys);
    }
    return keys;
  }

  /** Objects in key order (namespace, then name), as etcd returns them. */
  list(resource: string, namespace?: string): Obj[] {
    const b = this.objects.get(resource);
    if (!b) return [];
    const keys = this.keysOf(resource, b);
    let lo = 0;
    let hi = keys.length;
    if (namespace !== undefined) {
      const prefix = `${namespace}/`;
      // keys are sorted, so one namespace is one contiguous run starting at its prefix
      let a = 0;
      let z = keys.length;
      while (a < z) {
        const mid = (a + z) >>> 1;
        if (keys[mid]! < prefix) a = mid + 1;
        else z = mid;
      }
      lo = a;
      hi = lo;
      while (hi < keys.length && keys[hi]!.startsWith(prefix)) hi++;
    }
    const out: Obj[] = new Array(hi - lo);
    for (let i = lo; i < hi; i++) out[i - lo] = b.get(keys[i]!)!;
    return out;
  }

  count(resource: string): number {
    return this.objects.get(resource)?.size ?? 0;
  }

  /**
   * Stores obj (create or update) under a new resourceVersion, which is written into obj.
   * Durable once `durable()` resolves.
   */
  put(resource: string, obj: Obj, prev: Obj | undefined): Obj {
    this.checkHealthy();
    const ns = obj.metadata.namespace ?? "";
    const name = obj.metadata.name!;
    const rv = ++this.rv;
    obj.metadata.resourceVersion = String(rv);
    const b = this.bucket(resource);
    const key = keyOf(ns, name);
    if (!b.has(key)) this.sortedKeys.delete(resource);
    b.set(key, obj);
    this.enqueue(
      { type: prev ? "MODIFIED" : "ADDED", rv, resource, object: obj, prev },
      ns,
      name,
      JSON.stringify(obj),
    );
    return obj;
  }

  /** Removes the object; the DELETED event carries it with the deletion's resourceVersion. */
  delete(resource: string, prev: Obj): Obj {
    this.checkHealthy();
    const ns = prev.metadata.namespace ?? "";
    const name = prev.metadata.name!;
    const rv = ++this.rv;
    if (this.objects.get(resource)?.delete(keyOf(ns, name))) this.sortedKeys.delete(resource);
    const gone = { ...prev, metadata: { ...prev.metadata, resourceVersion: String(rv) } };
    this.enqueue({ type: "DELETED", rv, resource, object: gone, prev }, ns, name, undefined);
    return gone;
  }

  private checkHealthy(): void {
    if (this.failed) throw new Error(`storage failed, restart the apiserver: ${this.failed.message}`);
  }

  private enqueue(event: StoreEvent, ns: string, name: string, data: string | undefined): void {
    this.pending.push({ event, ns, name, data });
    if (!this.batch) {
      let resolve!: () => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      promise.catch(() => {});
      this.batch = { promise, resolve, reject };
      setImmediate(() => this.commit());
    }
  }

  /** Resolves once every write made so far is on disk. */
  durable(): Promise<void> {
    return this.batch?.promise ?? Promise.resolve();
  }

  /** Commits the pending writes in one transaction, then tells watchers. */
  commit(): void {
    const batch = this.batch;
    const ops = this.pending;
    this.batch = undefined;
    this.pending = [];
    if (ops.length === 0) {
      batch?.resolve();
      return;
    }
    try {
      this.db.transaction(() => {
        for (const op of ops) {
          const e = op.event;
          if (op.data === undefined) this.stmts.del.run(e.resource, op.ns, op.name);
          else this.stmts.put.run(e.resource, op.ns, op.name, e.rv, op.data);
        }
        this.stmts.setRv.run(ops[ops.length - 1]!.event.rv);
      })();
    } catch (e) {
      this.failed = e as Error;
      batch?.reject(this.failed);
      return;
    }
    for (const op of ops) this.emit(op.event);
    batch?.resolve();
  }

  private emit(e: StoreEvent): void {
    this.log.push(e);
    if (this.log.length - this.logStart > this.window) {
      // Drop the oldest quarter at once so trimming stays cheap.
      const drop = Math.max(1, Math.floor(this.window / 4));
      this.oldestRv = this.log[this.logStart + drop - 1]!.rv;
      this.logStart += drop;
      if (this.logStart > this.window) {
        this.log = this.log.slice(this.logStart);
        this.logStart = 0;
      }
    }
    const ls = this.listeners.get(e.resource);
    if (ls)
      for (const l of [...ls]) {
        try {
          l(e);
        } catch {
          // A broken watcher must not fail the write that woke it; it is closed by its owner.
        }
      }
  }

  /** Throws TooOldResourceVersion unless a watch can resume right after resourceVersion rv. */
  checkWatchable(rv: number): void {
    if (rv < this.oldestRv) throw new TooOldResourceVersion(rv, this.oldestRv);
  }

  /**
   * Delivers the changes to `resource` after resourceVersion `fromRv`, then every later one.
   * Throws TooOldResourceVersion when the window no longer holds them.
   */
  watch(resource: string, fromRv: number, listener: Listener): () => void {
    if (fromRv < this.oldestRv) throw new TooOldResourceVersion(fromRv, this.oldestRv);
    for (let i = this.logStart; i < this.log.length; i++) {
      const e = this.log[i]!;
      if (e.rv > fromRv && e.resource === resource) listener(e);
    }
    // fromRv may name a write still waiting for its commit: it must not be delivered twice.
    const filtered: Listener = (e) => {
      if (e.rv > fromRv) listener(e);
    };
    let set = this.listeners.get(resource);
    if (!set) this.listeners.set(resource, (set = new Set()));
    set.add(filtered);
    return () => {
      set.delete(filtered);
    };
  }

  watcherCount(): number {
    let n = 0;
    for (const s of this.listeners.values()) n += s.size;
    return n;
  }

  close(): void {
    this.commit();
    this.db.close();
  }
}
