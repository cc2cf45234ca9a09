import { describe, expect, it } from "vitest";
import type { EndpointSlice, Pod, Service } from "@klab/api";
import { desiredEndpoints, endpointSubsets } from "./endpoints.ts";
import { findPort, managesEndpoints } from "./logic.ts";
import { MAX_ENDPOINTS_PER_SLICE, planSlices } from "./slices.ts";

function svc(spec: Partial<NonNullable<Service["spec"]>> = {}): Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "web", namespace: "default", uid: "svc-1", labels: { app: "web" } },
    spec: {
      selector: { app: "web" },
      ports: [{ name: "http", port: 80, targetPort: "http", protocol: "TCP" }],
      ...spec,
    },
  };
}

function pod(
  i: number,
  opts: { ready?: boolean; port?: number; terminating?: boolean; ip?: string } = {},
): Pod {
  const p: Pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: `web-${i}`, namespace: "default", uid: `uid-${i}`, labels: { app: "web" } },
    spec: {
      nodeName: `node-${i % 3}`,
      containers: [{ name: "c", ports: [{ name: "http", containerPort: opts.port ?? 8080 }] }],
    },
    status: {
      phase: "Running",
      podIP: opts.ip ?? `10.244.${Math.floor(i / 250)}.${(i % 250) + 2}`,
      conditions: [{ type: "Ready", status: opts.ready === false ? "False" : "True" }],
    },
  };
  if (opts.terminating) p.metadata.deletionTimestamp = "2026-01-01T00:00:00Z";
  return p;
}

describe("which pods back a Service", () => {
  it("resolves a named targetPort per pod, and skips selector-less and ExternalName Services", () => {
    expect(findPort(pod(1, { port: 9090 }), { port: 80, targetPort: "http" })).toBe(9090);
    expect(findPort(pod(1), { port: 80, targetPort: "nope" })).toBeUndefined();
    expect(findPort(pod(1), { port: 80 })).toBe(80);
    expect(managesEndpoints(svc({ selector: undefined }))).toBe(false);
    expect(managesEndpoints(svc({ type: "ExternalName" }))).toBe(false);
  });
});

describe("Endpoints", () => {
  it("puts ready pods in addresses and the others in notReadyAddresses, grouped by resolved port", () => {
    const { subsets } = endpointSubsets(svc(), [
      pod(1),
      pod(2, { ready: false }),
      pod(3, { port: 9090 }),
      pod(4, { terminating: true }),
    ]);
    expect(subsets).toEqual([
      {
        addresses: [
          {
            ip: "10.244.0.3",
            nodeName: "node-1",
            targetRef: { kind: "Pod", namespace: "default", name: "web-1", uid: "uid-1" },
          },
        ],
        notReadyAddresses: [
          {
            ip: "10.244.0.4",
            nodeName: "node-2",
            targetRef: { kind: "Pod", namespace: "default", name: "web-2", uid: "uid-2" },
          },
        ],
        ports: [{ name: "http", port: 8080, protocol: "TCP" }],
      },
      {
        addresses: [
          {
            ip: "10.244.0.5",
            nodeName: "node-0",
            targetRef: { kind: "Pod", namespace: "default", name: "web-3", uid: "uid-3" },
          },
        ],
        ports: [{ name: "http", port: 9090, protocol: "TCP" }],
      },
    ]);
  });

  it("publishes not-ready pods as ready with publishNotReadyAddresses", () => {
    const { subsets } = endpointSubsets(svc({ publishNotReadyAddresses: true }), [pod(1, { ready: false })]);
    expect(subsets[0]!.addresses).toHaveLength(1);
    expect(subsets[0]!.notReadyAddresses).toBeUndefined();
  });

  it("keeps 1000 addresses and marks the Endpoints truncated beyond that", () => {
    const pods = Array.from({ length: 1200 }, (_, i) => pod(i, { ready: i % 2 === 0 }));
    const ep = desiredEndpoints(svc(), pods);
    const s = ep.subsets![0]!;
    expect(s.addresses).toHaveLength(600);
    expect(s.notReadyAddresses).toHaveLength(400);
    expect(ep.metadata.annotations).toEqual({ "endpoints.kubernetes.io/over-capacity": "truncated" });
    expect(ep.metadata.labels).toEqual({ app: "web" });
  });

  it("has no subsets when no pod is selected", () => {
    expect(desiredEndpoints(svc(), []).subsets).toBeUndefined();
  });
});

describe("EndpointSlices", () => {
  const nodes = new Map();

  it("writes ready/serving/terminating conditions, nodeName and targetRef, with ports named as the Service's", () => {
    const plan = planSlices(
      svc(),
      [pod(1), pod(2, { ready: false }), pod(3, { terminating: true })],
      [],
      nodes,
    );
    expect(plan.create).toHaveLength(1);
    const s = plan.create[0]!;
    expect(s.metadata.labels).toEqual({
      app: "web",
      "kubernetes.io/service-name": "web",
      "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
    });
    expect(s.metadata.generateName).toBe("web-");
    expect(s.metadata.ownerReferences![0]).toMatchObject({
      kind: "Service",
      name: "web",
      uid: "svc-1",
      controller: true,
    });
    expect(s.ports).toEqual([{ name: "http", port: 8080, protocol: "TCP" }]);
    expect(s.endpoints!.map((e) => [e.targetRef!.name, e.conditions, e.nodeName])).toEqual([
      ["web-1", { ready: true, serving: true, terminating: false }, "node-1"],
      ["web-2", { ready: false, serving: false, terminating: false }, "node-2"],
      ["web-3", { ready: false, serving: true, terminating: true }, "node-0"],
    ]);
    expect(s.endpoints![0]!.zone).toBeUndefined();
  });

  it("splits 250 endpoints into slices of at most 100 and leaves unchanged slices alone", () => {
    const pods = Array.from({ length: 250 }, (_, i) => pod(i));
    const first = planSlices(svc(), pods, [], nodes);
    expect(first.create.map((s) => s.endpoints!.length)).toEqual([
      MAX_ENDPOINTS_PER_SLICE,
      MAX_ENDPOINTS_PER_SLICE,
      50,
    ]);
    const stored = first.create.map(
      (s, i) =>
        ({ ...s, metadata: { ...s.metadata, name: `web-${i}`, resourceVersion: "1" } }) as EndpointSlice,
    );
    const again = planSlices(svc(), pods, stored, nodes);
    expect(again).toEqual({ create: [], update: [], delete: [] });
    // One pod goes not-ready: only its slice is rewritten.
    const changed = pods.map((p, i) => (i === 7 ? pod(7, { ready: false }) : p));
    const third = planSlices(svc(), changed, stored, nodes);
    expect(third.create).toEqual([]);
    expect(third.delete).toEqual([]);
    expect(third.update).toHaveLength(1);
  });

  it("keeps one empty placeholder slice when no pod is selected", () => {
    const plan = planSlices(svc(), [], [], nodes);
    expect(plan.create).toHaveLength(1);
    expect(plan.create[0]!.endpoints).toEqual([]);
    expect(plan.create[0]!.ports).toBeUndefined();
  });
});
