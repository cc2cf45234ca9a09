import { describe, expect, it } from "vitest";
import { strategicMergePatch, PatchError } from "./strategic.ts";
import { jsonMergePatch, jsonPatch } from "./merge.ts";

const deployment = () => ({
  metadata: { name: "web", labels: { app: "web" }, finalizers: ["a"] },
  spec: {
    replicas: 2,
    template: {
      spec: {
        containers: [
          {
            name: "c",
            image: "nginx",
            env: [
              { name: "A", value: "1" },
              { name: "B", value: "2" },
            ],
            ports: [{ containerPort: 80 }],
          },
          { name: "side", image: "busybox", args: ["sleep", "1"] },
        ],
        tolerations: [{ key: "x", operator: "Exists" }],
        volumes: [{ name: "v", emptyDir: {} }],
      },
    },
  },
});

describe("strategic merge patch", () => {
  it("merges containers by name and keeps the ones the patch does not name", () => {
    const out = strategicMergePatch(deployment(), {
      spec: { template: { spec: { containers: [{ name: "c", image: "nginx:1.27" }] } } },
    }) as ReturnType<typeof deployment>;
    const cs = out.spec.template.spec.containers;
    expect(cs.map((c) => c.name)).toEqual(["c", "side"]);
    expect(cs[0]!.image).toBe("nginx:1.27");
    expect(cs[0]!.env).toHaveLength(2);
  });

  it("orders lists by $setElementOrder as kubectl apply sends it", () => {
    const out = strategicMergePatch(deployment(), {
      spec: {
        template: {
          spec: {
            "$setElementOrder/containers": [{ name: "side" }, { name: "c" }],
            containers: [{ name: "side", image: "busybox:1" }],
          },
        },
      },
    }) as ReturnType<typeof deployment>;
    expect(out.spec.template.spec.containers.map((c) => c.name)).toEqual(["side", "c"]);
  });

  it("deletes with null and with $patch: delete, and replaces lists without a merge key", () => {
    const out = strategicMergePatch(deployment(), {
      metadata: { labels: { app: null, tier: "fe" } },
      spec: {
        template: {
          spec: {
            containers: [
              { name: "c", env: [{ name: "A", $patch: "delete" }] },
              { name: "side", $patch: "delete" },
            ],
            tolerations: [{ key: "y", operator: "Exists" }],
          },
        },
      },
    }) as ReturnType<typeof deployment>;
    expect(out.metadata.labels).toEqual({ tier: "fe" });
    expect(out.spec.template.spec.containers.map((c) => c.name)).toEqual(["c"]);
    expect(out.spec.template.spec.containers[0]!.env).toEqual([{ name: "B", value: "2" }]);
    expect(out.spec.template.spec.tolerations).toEqual([{ key: "y", operator: "Exists" }]);
  });

  it("replaces a whole map or list with $patch: replace", () => {
    const out = strategicMergePatch(deployment(), {
      metadata: { labels: { $patch: "replace", only: "me" } },
      spec: { template: { spec: { volumes: [{ name: "w", emptyDir: {} }, { $patch: "replace" }] } } },
    }) as ReturnType<typeof deployment>;
    expect(out.metadata.labels).toEqual({ only: "me" });
    expect(out.spec.template.spec.volumes).toEqual([{ name: "w", emptyDir: {} }]);
  });

  it("merges service ports by port and container ports by containerPort", () => {
    const svc = {
      spec: {
        ports: [
          { port: 80, targetPort: 8080 },
          { port: 443, targetPort: 8443 },
        ],
      },
    };
    const out = strategicMergePatch(svc, { spec: { ports: [{ port: 80, nodePort: 30080 }] } }) as typeof svc;
    expect(out.spec.ports).toEqual([
      { port: 80, targetPort: 8080, nodePort: 30080 },
      { port: 443, targetPort: 8443 },
    ]);
  });

  it("keeps only $retainKeys and edits primitive lists with $deleteFromPrimitiveList", () => {
    const out = strategicMergePatch(
      {
        metadata: { finalizers: ["a", "b"] },
        spec: { strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1 } } },
      },
      {
        metadata: { "$deleteFromPrimitiveList/finalizers": ["a"], finalizers: ["c"] },
        spec: { strategy: { $retainKeys: ["type"], type: "Recreate" } },
      },
    );
    expect(out).toEqual({ metadata: { finalizers: ["b", "c"] }, spec: { strategy: { type: "Recreate" } } });
  });

  it("rejects what is not a patch", () => {
    expect(() => strategicMergePatch({}, [1])).toThrow(PatchError);
    expect(() => strategicMergePatch({}, { a: { $patch: "explode" } })).toThrow(PatchError);
    expect(() => strategicMergePatch({}, { spec: { containers: ["x"] } })).toThrow(PatchError);
  });
});

describe("JSON merge patch and JSON patch", () => {
  it("applies RFC 7386 and RFC 6902", () => {
    expect(jsonMergePatch({ a: 1, b: { c: 2, d: 3 } }, { b: { c: null, e: 4 }, f: [1] })).toEqual({
      a: 1,
      b: { d: 3, e: 4 },
      f: [1],
    });
    expect(
      jsonPatch({ spec: { replicas: 1 } }, [{ op: "replace", path: "/spec/replicas", value: 3 }]),
    ).toEqual({ spec: { replicas: 3 } });
    expect(() => jsonPatch({}, [{ op: "remove", path: "/nope" }])).toThrow(PatchError);
    expect(() => jsonPatch({}, { op: "add" })).toThrow(PatchError);
  });
});
