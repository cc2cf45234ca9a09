import { describe, expect, it } from "vitest";
import { compareYamlKeys, ManifestError, parseManifests, toYaml } from "./io.ts";

describe("reading manifests", () => {
  it("reads multi-document YAML, skipping empty documents and flattening lists", () => {
    const objs = parseManifests(`---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: web}
---
# only a comment
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  created: 2024-01-01
`);
    expect(objs.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(["Service/web", "ConfigMap/cfg"]);
    // go-yaml v2 leaves timestamps as strings
    expect((objs[1] as unknown as { data: Record<string, unknown> }).data.created).toBe("2024-01-01");
  });

  it("reads YAML 1.1 scalars as kubectl does", () => {
    const [o] = parseManifests("apiVersion: v1\nkind: X\nmetadata: {}\nspec: {a: yes, b: 0755, c: '0755'}\n");
    expect((o as unknown as { spec: unknown }).spec).toEqual({ a: true, b: 493, c: "0755" });
  });

  it("reads a stream of JSON objects", () => {
    const objs = parseManifests(
      '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}\n{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Pod"}]}',
    );
    expect(objs).toHaveLength(2);
    expect(objs[1].metadata).toEqual({});
  });

  it("reports malformed YAML with the line", () => {
    const bad = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n   b: c\n";
    expect(() => parseManifests(bad)).toThrow(ManifestError);
    try {
      parseManifests(bad);
    } catch (e) {
      expect((e as ManifestError).line).toBe(4);
      expect((e as Error).message).toMatch(/^yaml: document 1, line 4: /);
    }
    expect(() => parseManifests("a: b\na: c\n")).toThrow(/line 2: Map keys must be unique/);
  });

  it("reports documents without apiVersion or kind", () => {
    expect(() => parseManifests("apiVersion: v1\nkind: Pod\n---\nkind: Service\n")).toThrow(
      "document 2 (line 3): apiVersion not set",
    );
    expect(() => parseManifests("- a\n- b\n")).toThrow(
      "expected an object with apiVersion and kind, found a list",
    );
  });

  it("reports malformed JSON with the line", () => {
    try {
      parseManifests('{"apiVersion":"v1","kind":"Pod"}\n{"apiVersion": "v1",\n "kind": }');
      expect.fail("no error");
    } catch (e) {
      expect((e as ManifestError).line).toBe(3);
    }
  });
});

describe("printing YAML", () => {
  it("prints as kubectl -o yaml: sorted keys, unindented lists, quoted look-alikes", () => {
    const y = toYaml({
      kind: "Pod",
      apiVersion: "v1",
      metadata: {
        name: "web",
        resourceVersion: "12",
        labels: {},
        annotations: { "kubectl.kubernetes.io/last-applied-configuration": '{"a":1}\n' },
      },
      spec: { containers: [{ name: "c", args: ["-c", "yes", "[x]"], image: "nginx" }], hostNetwork: true },
      status: { message: "containers with unready status: [nginx]", reason: "", podIP: "10.0.0.1" },
    });
    expect(y).toBe(`apiVersion: v1
kind: Pod
metadata:
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: |
      {"a":1}
  labels: {}
  name: web
  resourceVersion: "12"
spec:
  containers:
  - args:
    - -c
    - "yes"
    - '[x]'
    image: nginx
    name: c
  hostNetwork: true
status:
  message: 'containers with unready status: [nginx]'
  podIP: 10.0.0.1
  reason: ""
`);
  });

  it("round-trips through parseManifests", () => {
    const obj = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "x" },
      data: { on: "on", n: "1.0", e: "" },
    };
    expect(parseManifests(toYaml(obj))).toEqual([obj]);
  });

  it("orders keys as go-yaml v2 does", () => {
    expect(["b", "a10", "a2", "A", "_x", "a"].sort(compareYamlKeys)).toEqual([
      "_x",
      "A",
      "a",
      "a2",
      "a10",
      "b",
    ]);
  });
});
