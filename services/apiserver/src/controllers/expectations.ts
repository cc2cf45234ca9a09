// What a controller has asked for and not yet seen in its cache (kube's ControllerExpectations):
// until the pods it created appear and the pods it deleted go, it must not count again, or a
// lagging cache would make it create or delete twice. Entries expire so a lost event cannot
// wedge a controller.

const TTL_MS = 60_000;

interface Pending {
  creates: Set<string>;
  deletes: Set<string>;
  at: number;
}

export class Expectations {
  private readonly byController = new Map<string, Pending>();

  private entry(key: string): Pending {
    let e = this.byController.get(key);
    if (!e) this.byController.set(key, (e = { creates: new Set(), deletes: new Set(), at: Date.now() }));
    e.at = Date.now();
    return e;
  }

  expectCreate(key: string, podKey: string): void {
    this.entry(key).creates.add(podKey);
  }

  expectDelete(key: string, podKey: string): void {
    this.entry(key).deletes.add(podKey);
  }

  /** The create failed or the pod showed up. */
  created(key: string, podKey: string): void {
    this.byController.get(key)?.creates.delete(podKey);
  }

  deleted(key: string, podKey: string): void {
    this.byController.get(key)?.deletes.delete(podKey);
  }

  /** Observed state: `present` says whether a pod key is in the cache (and not terminating). */
  satisfied(key: string, present: (podKey: string) => boolean): boolean {
    const e = this.byController.get(key);
    if (!e) return true;
    for (const p of e.creates) if (present(p)) e.creates.delete(p);
    for (const p of e.deletes) if (!present(p)) e.deletes.delete(p);
    if (e.creates.size === 0 && e.deletes.size === 0) {
      this.byController.delete(key);
      return true;
    }
    if (Date.now() - e.at > TTL_MS) {
      this.byController.delete(key);
      return true;
    }
    return false;
  }

  forget(key: string): void {
    this.byController.delete(key);
  }
}
