import { describe, expect, it } from "vitest";
import { findResource } from "../resources.ts";
import type { KubeObject, Pod } from "../types.ts";
import { humanDuration } from "./duration.ts";
import { printTable } from "./table.ts";

const now = new Date("2026-01-01T12:00:00Z");
const ago = (s: number) => new Date(now.getTime() - s * 1000).toISOString();
const rt = (group: string, plural: string) => findResource(group, "v1", plural)!;
const names = (group: string, plural: string, wide: boolean) =>
  printTable(rt(group, plural), [], { wide, now }).columnDefinitions.map((c) => c.name.toUpperCase());
const cells = (group: string, plural: string, obj: unknown, wide = true) =>
  printTable(rt(group, plural), [obj as KubeObject], { wide, now }).rows[0].cells;

describe("ages", () => {
  it("read as kubectl prints them", () => {
    const cases: Array<[number, string]> = [
      [-5, "<invalid>"],
      [-1, "0s"],
      [5, "5s"],
      [119, "119s"],
      [123, "2m3s"],
      [180, "3m"],
      [600, "10m"],
      [179 * 60, "179m"],
      [3 * 3600 + 4 * 60, "3h4m"],
      [5 * 3600, "5h"],
      [10 * 3600, "10h"],
      [47 * 3600, "47h"],
      [5 * 86400 + 3 * 3600, "5d3h"],
      [5 * 86400, "5d"],
      [20 * 86400, "20d"],
      [800 * 86400, "2y70d"],
      [3650 * 86400, "10y"],
    ];
    for (const [s, want] of cases) expect(humanDuration(s * 1000), `${s}s`).toBe(want);
  });
});

describe("column sets", () => {
  it("match kube-apiserver 1.32 for each kind, wide and not", () => {
    expect(names("", "pods", false)).toEqual(["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    expect(names("", "pods", true)).toEqual([
      "NAME",
      "READY",
      "STATUS",
      "RESTARTS",
      "AGE",
      "IP",
      "NODE",
      "NOMINATED NODE",
      "READINESS GATES",
    ]);
    expect(names("", "services", true)).toEqual([
      "NAME",
      "TYPE",
      "CLUSTER-IP",
      "EXTERNAL-IP",
      "PORT(S)",
      "AGE",
      "SELECTOR",
    ]);
    expect(names("", "endpoints", true)).toEqual(["NAME", "ENDPOINTS", "AGE"]);
    expect(names("discovery.k8s.io", "endpointslices", true)).toEqual([
      "NAME",
      "ADDRESSTYPE",
      "PORTS",
      "ENDPOINTS",
      "AGE",
    ]);
    expect(names("apps", "deployments", true)).toEqual([
      "NAME",
      "READY",
      "UP-TO-DATE",
      "AVAILABLE",
      "AGE",
      "CONTAINERS",
      "IMAGES",
      "SELECTOR",
    ]);
    expect(names("apps", "replicasets", false)).toEqual(["NAME", "DESIRED", "CURRENT", "READY", "AGE"]);
    expect(names("apps", "daemonsets", false)).toEqual([
      "NAME",
      "DESIRED",
      "CURRENT",
      "READY",
      "UP-TO-DATE",
      "AVAILABLE",
      "NODE SELECTOR",
      "AGE",
    ]);
    expect(names("", "nodes", true)).toEqual([
      "NAME",
      "STATUS",
      "ROLES",
      "AGE",
      "VERSION",
      "INTERNAL-IP",
      "EXTERNAL-IP",
      "OS-IMAGE",
      "KERNEL-VERSION",
      "CONTAINER-RUNTIME",
    ]);
    expect(names("networking.k8s.io", "ingresses", true)).toEqual([
      "NAME",
      "CLASS",
      "HOSTS",
      "ADDRESS",
      "PORTS",
      "AGE",
    ]);
    expect(names("networking.k8s.io", "networkpolicies", true)).toEqual(["NAME", "POD-SELECTOR", "AGE"]);
    expect(names("", "events", false)).toEqual(["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]);
    expect(names("", "events", true)).toEqual([
      "LAST SEEN",
      "TYPE",
      "REASON",
      "OBJECT",
      "SUBOBJECT",
      "SOURCE",
      "MESSAGE",
      "FIRST SEEN",
      "COUNT",
      "NAME",
    ]);
    expect(names("", "namespaces", true)).toEqual(["NAME", "STATUS", "AGE"]);
    expect(names("", "configmaps", true)).toEqual(["NAME", "DATA", "AGE"]);
    expect(names("", "secrets", true)).toEqual(["NAME", "TYPE", "DATA", "AGE"]);
    expect(names("coordination.k8s.io", "leases", true)).toEqual(["NAME", "HOLDER", "AGE"]);
    const pods = printTable(rt("", "pods"), [], { wide: true }).columnDefinitions;
    expect(pods[0]).toMatchObject({ name: "Name", type: "string", format: "name", priority: 0 });
    expect(pods[5]).toMatchObject({ name: "IP", priority: 1 });
  });
});

describe("Services", () => {
  const svc = (spec: Record<string, unknown>, status: Record<string, unknown> = {}) => ({
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "web", namespace: "default", creationTimestamp: ago(300) },
    spec,
    status,
  });
  it("NodePort shows 80:30080/TCP and the selector", () => {
    expect(
      cells(
        "",
        "services",
        svc({
          type: "NodePort",
          clusterIPs: ["10.96.12.34"],
          ports: [
            { port: 80, nodePort: 30080, protocol: "TCP" },
            { port: 53, protocol: "UDP" },
          ],
          selector: { tier: "fe", app: "web" },
        }),
      ),
    ).toEqual(["web", "NodePort", "10.96.12.34", "<none>", "80:30080/TCP,53/UDP", "5m", "app=web,tier=fe"]);
  });
  it("LoadBalancer is <pending> until the edge assigns an IP", () => {
    const lb = {
      type: "LoadBalancer",
      clusterIPs: ["10.96.0.7"],
      ports: [{ port: 80, nodePort: 31000, protocol: "TCP" }],
    };
    expect(cells("", "services", svc(lb))[3]).toBe("<pending>");
    expect(cells("", "services", svc(lb, { loadBalancer: { ingress: [{ ip: "172.29.255.200" }] } }))[3]).toBe(
      "172.29.255.200",
    );
  });
  it("headless, ExternalName and no ports", () => {
    expect(cells("", "services", svc({ type: "ClusterIP", clusterIPs: ["None"], ports: [] }), false)).toEqual(
      ["web", "ClusterIP", "None", "<none>", "<none>", "5m"],
    );
    expect(cells("", "services", svc({ type: "ExternalName", externalName: "db.example.com" }))).toEqual([
      "web",
      "ExternalName",
      "<none>",
      "db.example.com",
      "<none>",
      "5m",
      "<none>",
    ]);
  });
});

describe("Pods", () => {
  const pod = (status: Record<string, unknown>, extra: Record<string, unknown> = {}): Pod =>
    ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "web-1", namespace: "default", creationTimestamp: ago(7200), ...extra },
      spec: { containers: [{ name: "c" }], nodeName: "node-a" },
      status,
    }) as Pod;
  const status = (p: Pod) => cells("", "pods", p, false)[2];

  it("a running pod", () => {
    const p = pod({
      phase: "Running",
      podIPs: [{ ip: "10.244.1.5" }],
      containerStatuses: [
        { name: "c", ready: true, restartCount: 0, state: { running: { startedAt: ago(7000) } } },
      ],
    });
    expect(cells("", "pods", p)).toEqual([
      "web-1",
      "1/1",
      "Running",
      "0",
      "120m",
      "10.244.1.5",
      "node-a",
      "<none>",
      "<none>",
    ]);
  });

  it("crash loops show restarts with the time of the last one", () => {
    const p = pod({
      phase: "Running",
      containerStatuses: [
        {
          name: "c",
          ready: false,
          restartCount: 4,
          state: { waiting: { reason: "CrashLoopBackOff" } },
          lastState: { terminated: { exitCode: 1, finishedAt: ago(65) } },
        },
      ],
    });
    expect(cells("", "pods", p, false)).toEqual(["web-1", "0/1", "CrashLoopBackOff", "4 (65s ago)", "120m"]);
  });

  it("image pull errors, completion, termination and init containers", () => {
    expect(
      status(
        pod({
          phase: "Pending",
          containerStatuses: [
            { name: "c", ready: false, restartCount: 0, state: { waiting: { reason: "ImagePullBackOff" } } },
          ],
        }),
      ),
    ).toBe("ImagePullBackOff");
    const done = pod({
      phase: "Succeeded",
      containerStatuses: [
        {
          name: "c",
          ready: false,
          restartCount: 0,
          state: { terminated: { exitCode: 0, reason: "Completed" } },
        },
      ],
    });
    expect(status(done)).toBe("Completed");
    expect(printTable(rt("", "pods"), [done], { now }).rows[0].conditions?.[0]).toMatchObject({
      type: "Completed",
      reason: "Succeeded",
    });
    expect(
      status(
        pod({
          phase: "Failed",
          containerStatuses: [
            { name: "c", ready: false, restartCount: 0, state: { terminated: { exitCode: 137 } } },
          ],
        }),
      ),
    ).toBe("ExitCode:137");
    expect(
      status(
        pod(
          {
            phase: "Running",
            containerStatuses: [{ name: "c", ready: true, restartCount: 0, state: { running: {} } }],
          },
          { deletionTimestamp: ago(1) },
        ),
      ),
    ).toBe("Terminating");
    expect(status(pod({ phase: "Pending" }))).toBe("Pending");
    const init = pod({
      phase: "Pending",
      initContainerStatuses: [
        {
          name: "i1",
          ready: false,
          restartCount: 0,
          state: { terminated: { exitCode: 0, reason: "Completed" } },
        },
        { name: "i2", ready: false, restartCount: 0, state: { running: {} } },
      ],
      containerStatuses: [
        { name: "c", ready: false, restartCount: 0, state: { waiting: { reason: "PodInitializing" } } },
      ],
    });
    (init.spec!.initContainers as unknown) = [{ name: "i1" }, { name: "i2" }];
    expect(status(init)).toBe("Init:1/2");
    const initFail = pod({
      phase: "Pending",
      initContainerStatuses: [
        { name: "i1", ready: false, restartCount: 3, state: { waiting: { reason: "CrashLoopBackOff" } } },
      ],
    });
    (initFail.spec!.initContainers as unknown) = [{ name: "i1" }];
    expect(status(initFail)).toBe("Init:CrashLoopBackOff");
  });
});

describe("other kinds", () => {
  it("Endpoints list three addresses then + N more...", () => {
    const ep = {
      apiVersion: "v1",
      kind: "Endpoints",
      metadata: { name: "web", creationTimestamp: ago(30) },
      subsets: [
        {
          addresses: ["10.244.1.2", "10.244.1.3", "10.244.2.2", "10.244.2.3"].map((ip) => ({ ip })),
          ports: [{ port: 8080 }],
        },
      ],
    };
    expect(cells("", "endpoints", ep)).toEqual([
      "web",
      "10.244.1.2:8080,10.244.1.3:8080,10.244.2.2:8080 + 1 more...",
      "30s",
    ]);
    expect(cells("", "endpoints", { ...ep, subsets: undefined })[1]).toBe("<none>");
  });

  it("EndpointSlices", () => {
    const es = {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: { name: "web-x7k2p", creationTimestamp: ago(30) },
      addressType: "IPv4",
      ports: [{ name: "", port: 8080, protocol: "TCP" }],
      endpoints: [{ addresses: ["10.244.1.2"] }, { addresses: ["10.244.2.2"] }],
    };
    expect(cells("discovery.k8s.io", "endpointslices", es)).toEqual([
      "web-x7k2p",
      "IPv4",
      "8080",
      "10.244.1.2,10.244.2.2",
      "30s",
    ]);
    expect(cells("discovery.k8s.io", "endpointslices", { ...es, ports: [], endpoints: [] })).toEqual([
      "web-x7k2p",
      "IPv4",
      "<unset>",
      "<unset>",
      "30s",
    ]);
  });

  it("Deployments", () => {
    const d = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "web", creationTimestamp: ago(90) },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: "web" } },
        template: { spec: { containers: [{ name: "nginx", image: "nginx:1.27" }] } },
      },
      status: { readyReplicas: 2, updatedReplicas: 3, availableReplicas: 2 },
    };
    expect(cells("apps", "deployments", d)).toEqual([
      "web",
      "2/3",
      3,
      2,
      "90s",
      "nginx",
      "nginx:1.27",
      "app=web",
    ]);
  });

  it("Nodes", () => {
    const n = {
      apiVersion: "v1",
      kind: "Node",
      metadata: {
        name: "node-a",
        creationTimestamp: ago(86400 * 3),
        labels: { "node-role.kubernetes.io/control-plane": "" },
      },
      spec: { unschedulable: true },
      status: {
        conditions: [{ type: "Ready", status: "False" }],
        addresses: [{ type: "InternalIP", address: "172.29.0.3" }],
        nodeInfo: {
          kubeletVersion: "v1.32.0",
          osImage: "klab",
          kernelVersion: "6.1.0",
          containerRuntimeVersion: "klab://0.1.0",
        },
      },
    };
    expect(cells("", "nodes", n)).toEqual([
      "node-a",
      "NotReady,SchedulingDisabled",
      "control-plane",
      "3d",
      "v1.32.0",
      "172.29.0.3",
      "<none>",
      "klab",
      "6.1.0",
      "klab://0.1.0",
    ]);
  });

  it("Ingresses, NetworkPolicies and Events", () => {
    const ing = {
      apiVersion: "networking.k8s.io/v1",
      kind: "Ingress",
      metadata: { name: "web-ingress", creationTimestamp: ago(10) },
      spec: {
        ingressClassName: "nginx",
        rules: [{ host: "example.com" }, { host: "api.example.com" }],
        tls: [{ hosts: ["example.com"] }],
      },
    };
    expect(cells("networking.k8s.io", "ingresses", ing)).toEqual([
      "web-ingress",
      "nginx",
      "example.com,api.example.com",
      "",
      "80, 443",
      "10s",
    ]);
    const np = {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: "deny-all", creationTimestamp: ago(10) },
      spec: { podSelector: {} },
    };
    expect(cells("networking.k8s.io", "networkpolicies", np)).toEqual(["deny-all", "<none>", "10s"]);
    const ev = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: "web-1.181", namespace: "default" },
      involvedObject: { kind: "Pod", name: "web-1", fieldPath: "spec.containers{c}" },
      reason: "Pulled",
      type: "Normal",
      message: "Container image already present\n",
      source: { component: "kubelet", host: "node-a" },
      firstTimestamp: ago(120),
      lastTimestamp: ago(20),
      count: 2,
    };
    expect(cells("", "events", ev)).toEqual([
      "20s",
      "Normal",
      "Pulled",
      "pod/web-1",
      "spec.containers{c}",
      "kubelet, node-a",
      "Container image already present",
      "2m",
      2,
      "web-1.181",
    ]);
  });
});
