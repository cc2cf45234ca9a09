import { describe, expect, it } from "vitest";
import { applyDefaults } from "./defaults.ts";
import { printTable } from "./printers/table.ts";
import { resourceForKind, resourceTypes } from "./resources.ts";
import { decodeObject, pruneUnknownFields } from "./schema.ts";
import { fieldsOf } from "./selectors/fields.ts";
import type { KubeObject } from "./types.ts";
import { validateObject } from "./validation/validate.ts";

const svc = {
  apiVersion: "v1",
  kind: "Service",
  metadata: { name: "web", labels: { app: "web" } },
  spec: { selector: { app: "web" }, ports: [{ port: 80, targetPort: "http" }] },
};

describe("decoding request bodies", () => {
  it("accepts a well-formed object", () => {
    expect(decodeObject(svc, "Service", "v1")).toEqual({ warnings: [] });
  });

  it("refuses wrong JSON types with encoding/json's message", () => {
    const bad = structuredClone(svc) as unknown as { spec: { ports: Array<Record<string, unknown>> } };
    bad.spec.ports[0].port = "80";
    expect(decodeObject(bad, "Service", "v1").error).toBe(
      'Service in version "v1" cannot be handled as a Service: json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port of type int32',
    );
    bad.spec.ports[0].port = 1.5;
    expect(decodeObject(bad, "Service", "v1").error).toMatch(
      /cannot unmarshal number 1.5 into Go struct field ServicePort.spec.ports.port of type int32$/,
    );
    expect(decodeObject({ ...svc, metadata: "web" }, "Service", "v1").error).toMatch(
      /cannot unmarshal string into Go struct field Service.metadata of type v1.ObjectMeta$/,
    );
    expect(
      decodeObject({ ...svc, metadata: { name: "x", labels: { a: 1 } } }, "Service", "v1").error,
    ).toMatch(/cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string$/);
    expect(
      decodeObject(
        {
          apiVersion: "v1",
          kind: "Pod",
          metadata: {},
          spec: { containers: [{ name: "c", resources: { limits: { cpu: "lots" } } }] },
        },
        "Pod",
        "v1",
      ).error,
    ).toMatch(/quantities must match the regular expression/);
  });

  it("reports unknown fields for Strict and Warn, with list indices", () => {
    const body = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "web" },
      spec: { replica: 3, template: { spec: { containers: [{ name: "c", imagePullPolcy: "Always" }] } } },
    };
    expect(decodeObject(body, "Deployment", "v1", "Strict").error).toBe(
      'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.replica", unknown field "spec.template.spec.containers[0].imagePullPolcy"',
    );
    expect(decodeObject(body, "Deployment", "v1", "Warn")).toEqual({
      warnings: [
        'unknown field "spec.replica"',
        'unknown field "spec.template.spec.containers[0].imagePullPolcy"',
      ],
    });
    expect(decodeObject(body, "Deployment", "v1", "Ignore")).toEqual({ warnings: [] });
    const pruned = pruneUnknownFields(structuredClone(body), "Deployment");
    expect(pruned.spec).toEqual({ template: { spec: { containers: [{ name: "c" }] } } });
  });
});

/** Deterministic PRNG so a failure reproduces. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const junk: unknown[] = [
  null,
  0,
  -1,
  1.5,
  70000,
  "",
  "x",
  "None",
  true,
  [],
  [1, "a"],
  {},
  { a: 1 },
  "10.0.0.1/33",
];

function mutate(v: unknown, r: () => number, depth = 0): unknown {
  if (r() < 0.15 || depth > 6) return junk[Math.floor(r() * junk.length)];
  if (Array.isArray(v)) return v.map((x) => mutate(x, r, depth + 1));
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (r() > 0.05) out[k] = mutate(x, r, depth + 1);
    if (r() < 0.1)
      out[["spec", "ports", "selector", "metadata", "status", "template"][Math.floor(r() * 6)]] =
        junk[Math.floor(r() * junk.length)];
    return out;
  }
  return r() < 0.3 ? junk[Math.floor(r() * junk.length)] : v;
}

const seeds: KubeObject[] = [
  svc as KubeObject,
  {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: "default" },
    spec: {
      replicas: 2,
      selector: {
        matchLabels: { app: "web" },
        matchExpressions: [{ key: "a", operator: "In", values: ["b"] }],
      },
      template: {
        metadata: { labels: { app: "web" } },
        spec: {
          containers: [
            {
              name: "c",
              image: "nginx",
              ports: [{ containerPort: 80, name: "http" }],
              env: [{ name: "A", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } }],
              readinessProbe: { httpGet: { port: "http" } },
              resources: { limits: { cpu: "1" } },
            },
          ],
          tolerations: [{ key: "k", operator: "Exists" }],
        },
      },
    },
  } as KubeObject,
  {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "p", namespace: "d" },
    spec: {
      podSelector: { matchLabels: { a: "b" } },
      ingress: [
        {
          from: [{ ipBlock: { cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] } }],
          ports: [{ port: 80, endPort: 90 }],
        },
      ],
      egress: [{ to: [{ namespaceSelector: {} }] }],
    },
  } as KubeObject,
  {
    apiVersion: "networking.k8s.io/v1",
    kind: "Ingress",
    metadata: { name: "i", namespace: "d" },
    spec: {
      tls: [{ hosts: ["a.example"], secretName: "s" }],
      rules: [
        {
          host: "a.example",
          http: {
            paths: [
              { path: "/", pathType: "Prefix", backend: { service: { name: "web", port: { number: 80 } } } },
            ],
          },
        },
      ],
    },
  } as KubeObject,
  {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name: "e", namespace: "d" },
    addressType: "IPv4",
    endpoints: [{ addresses: ["10.0.0.1"], conditions: { ready: true } }],
    ports: [{ port: 80 }],
  } as unknown as KubeObject,
  {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p", namespace: "d" },
    spec: { containers: [{ name: "c", image: "x" }], initContainers: [{ name: "i", image: "y" }] },
    status: {
      phase: "Running",
      containerStatuses: [
        {
          name: "c",
          ready: true,
          restartCount: 1,
          state: { running: {} },
          lastState: { terminated: { exitCode: 1 } },
        },
      ],
      initContainerStatuses: [
        { name: "i", ready: false, restartCount: 0, state: { terminated: { exitCode: 0 } } },
      ],
    },
  } as KubeObject,
  {
    apiVersion: "v1",
    kind: "Endpoints",
    metadata: { name: "e", namespace: "d" },
    subsets: [{ addresses: [{ ip: "10.0.0.1" }], ports: [{ port: 80 }] }],
  } as unknown as KubeObject,
  {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: "n" },
    spec: { podCIDR: "10.244.1.0/24", taints: [{ key: "a", effect: "NoSchedule" }] },
    status: { conditions: [{ type: "Ready", status: "True" }] },
  } as KubeObject,
  {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "s", namespace: "d" },
    data: { a: "YQ==" },
    type: "kubernetes.io/tls",
  } as KubeObject,
  {
    apiVersion: "v1",
    kind: "Event",
    metadata: { name: "e", namespace: "d" },
    involvedObject: { kind: "Pod", name: "p" },
    count: 2,
  } as KubeObject,
];

describe("malformed bodies", () => {
  it("never make decoding, defaulting, validation, field extraction or printing throw", () => {
    const r = rng(42);
    for (let i = 0; i < 3000; i++) {
      const seed = seeds[i % seeds.length];
      const obj = mutate(structuredClone(seed), r) as KubeObject;
      if (!obj || typeof obj !== "object" || Array.isArray(obj)) continue;
      obj.apiVersion = seed.apiVersion;
      obj.kind = seed.kind;
      const rt = resourceForKind(seed.apiVersion, seed.kind)!;
      const ctx = `iteration ${i}: ${JSON.stringify(obj).slice(0, 300)}`;
      expect(() => decodeObject(obj, seed.kind, "v1", "Warn"), ctx).not.toThrow();
      expect(() => applyDefaults(obj), ctx).not.toThrow();
      expect(() => validateObject(obj, i % 2 ? (seed as KubeObject) : undefined), ctx).not.toThrow();
      expect(() => fieldsOf(obj), ctx).not.toThrow();
      expect(() => printTable(rt, [obj], { wide: true }), ctx).not.toThrow();
    }
  });

  it("every served kind has a schema", () => {
    for (const rt of resourceTypes) {
      expect(
        decodeObject(
          { apiVersion: rt.apiVersion, kind: rt.kind, metadata: {}, bogus: 1 },
          rt.kind,
          rt.version,
        ).error,
        rt.kind,
      ).toMatch(/unknown field "bogus"/);
    }
  });
});

describe("Secret data", () => {
  const secret = (data: Record<string, unknown>) => ({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "s" },
    data,
  });
  it("must be base64, as Go decodes []byte", () => {
    expect(decodeObject(secret({ a: "YWRtaW4=", b: "YQ==", c: "" }), "Secret", "v1")).toEqual({
      warnings: [],
    });
    expect(decodeObject(secret({ a: "admin!" }), "Secret", "v1").error).toBe(
      'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 5',
    );
    expect(decodeObject(secret({ a: "YQ" }), "Secret", "v1").error).toMatch(
      /illegal base64 data at input byte 0$/,
    );
    expect(decodeObject(secret({ a: 5 }), "Secret", "v1").error).toMatch(
      /cannot unmarshal number into Go struct field Secret.data of type \[\]uint8$/,
    );
  });
});
