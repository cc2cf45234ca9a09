import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Store, TooOldResourceVersion, type Obj, type StoreEvent } from "./store.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const fresh = () => {
  const d = mkdtempSync(join(tmpdir(), "klab-store-"));
  dirs.push(d);
  return d;
};
const cm = (name: string, ns = "default"): Obj => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: ns },
});

describe("Store", () => {
  it("gives every write the next resourceVersion and keeps counting after a reopen", async () => {
    const dir = fresh();
    let s = new Store(dir);
    const a = s.put("configmaps", cm("a"), undefined);
    const b = s.put("configmaps", cm("b"), undefined);
    expect(Number(b.metadata.resourceVersion)).toBe(Number(a.metadata.resourceVersion) + 1);
    s.delete("configmaps", b);
    await s.durable();
    const rv = s.resourceVersion;
    s.close();
    s = new Store(dir);
    expect(s.resourceVersion).toBe(rv);
    expect(s.list("configmaps").map((o) => o.metadata.name)).toEqual(["a"]);
    expect(Number(s.put("configmaps", cm("c"), undefined).metadata.resourceVersion)).toBe(rv + 1);
    s.close();
  });

  it("lists in namespace/name order, by namespace", () => {
    const s = new Store(fresh());
    for (const [n, ns] of [
      ["b", "x"],
      ["a", "y"],
      ["c", "x"],
    ] as const)
      s.put("configmaps", cm(n, ns), undefined);
    expect(s.list("configmaps").map((o) => `${o.metadata.namespace}/${o.metadata.name}`)).toEqual([
      "x/b",
      "x/c",
      "y/a",
    ]);
    expect(s.list("configmaps", "y").map((o) => o.metadata.name)).toEqual(["a"]);
    s.close();
  });

  it("replays changes after a resourceVersion and refuses ones older than its window", async () => {
    const s = new Store(fresh(), 8);
    const start = s.resourceVersion;
    for (let i = 0; i < 4; i++) s.put("configmaps", cm(`o${i}`), undefined);
    await s.durable();
    const seen: StoreEvent[] = [];
    const stop = s.watch("configmaps", start + 2, (e) => seen.push(e));
    expect(seen.map((e) => e.object.metadata.name)).toEqual(["o2", "o3"]);
    s.put("services", cm("svc"), undefined);
    const prev = s.get("configmaps", "default", "o0")!;
    s.put("configmaps", { ...prev, data: { x: "1" } }, prev);
    expect(seen).toHaveLength(2); // watchers hear of a write only once it is durable
    await s.durable();
    expect(seen.map((e) => e.type)).toEqual(["ADDED", "ADDED", "MODIFIED"]);
    stop();
    for (let i = 0; i < 20; i++) s.put("configmaps", cm(`p${i}`), undefined);
    await s.durable();
    expect(() => s.watch("configmaps", start, () => {})).toThrow(TooOldResourceVersion);
    s.close();
  });
});
