// Durable object storage: SQLite (WAL, synchronous=FULL) is the source of truth, every write is one
// transaction that also advances the global resourceVersion, so an acknowledged write survives
// kill -9. A full in-memory copy serves reads, and a window of recent changes serves watches
// (like kube-apiserver's watch cache in front of etcd).
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

  /** Objects in key order (namespace, then name), as etcd returns them. */
  list(resource: string, namespace?: string): Obj[] {
    const b = this.objects.get(resource);
    if (!b) return [];
    const out: Array<[string, Obj]> = [];
    const prefix = namespace === undefined ? undefined : `${namespace}/`;
    for (const [k, v] of b) if (prefix === undefined || k.startsWith(prefix)) out.push([k, v]);
    out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return out.map((e) => e[1]);
  }

  count(resource: string): number {
    return this.objects.get(resource)?.size ?? 0;
  }

  /**
   * Stores obj (create or update) under a new resourceVersion, which is written into obj.
   * Returns only once the transaction is durable.
   */
  put(resource: string, obj: Obj, prev: Obj | undefined): Obj {
    const ns = obj.metadata.namespace ?? "";
    const name = obj.metadata.name!;
    const rv = this.rv + 1;
    obj.metadata.resourceVersion = String(rv);
    const data = JSON.stringify(obj);
    this.db.transaction(() => {
      this.stmts.put.run(resource, ns, name, rv, data);
      this.stmts.setRv.run(rv);
    })();
    this.rv = rv;
    this.bucket(resource).set(keyOf(ns, name), obj);
    this.emit({ type: prev ? "MODIFIED" : "ADDED", rv, resource, object: obj, prev });
    return obj;
  }

  /** Removes the object; the DELETED event carries it with the deletion's resourceVersion. */
  delete(resource: string, prev: Obj): Obj {
    const ns = prev.metadata.namespace ?? "";
    const name = prev.metadata.name!;
    const rv = this.rv + 1;
    this.db.transaction(() => {
      this.stmts.del.run(resource, ns, name);
      this.stmts.setRv.run(rv);
    })();
    this.rv = rv;
    this.objects.get(resource)?.delete(keyOf(ns, name));
    const gone = { ...prev, metadata: { ...prev.metadata, resourceVersion: String(rv) } };
    this.emit({ type: "DELETED", rv, resource, object: gone, prev });
    return gone;
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
    let set = this.listeners.get(resource);
    if (!set) this.listeners.set(resource, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  watcherCount(): number {
    let n = 0;
    for (const s of this.listeners.values()) n += s.size;
    return n;
  }

  close(): void {
    this.db.close();
  }
}
