import { describe, expect, it } from "vitest";
import { applyDefaults } from "./defaults.ts";
import type { Deployment, KubeObject, Namespace, NetworkPolicy, Pod, Secret, Service } from "./types.ts";

function defaulted<T>(obj: unknown): T {
  const o = JSON.parse(JSON.stringify(obj)) as KubeObject;
  applyDefaults(o);
  return o as T;
}

describe("defaulting", () => {
  it("Services get ClusterIP, None affinity, TCP, targetPort = port and Cluster policies", () => {
    const s = defaulted<Service>({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "web" },
      spec: {
        type: "NodePort",
        selector: { app: "web" },
        ports: [{ port: 80 }, { port: 53, protocol: "UDP", targetPort: "dns" }],
      },
    });
    expect(s.spec).toEqual({
      type: "NodePort",
      selector: { app: "web" },
      ports: [
        { port: 80, protocol: "TCP", targetPort: 80 },
        { port: 53, protocol: "UDP", targetPort: "dns" },
      ],
      sessionAffinity: "None",
      externalTrafficPolicy: "Cluster",
      internalTrafficPolicy: "Cluster",
      ipFamilies: ["IPv4"],
      ipFamilyPolicy: "SingleStack",
    });
    const lb = defaulted<Service>({
      apiVersion: "v1",
      kind: "Service",
      metadata: {},
      spec: { type: "LoadBalancer", sessionAffinity: "ClientIP" },
    });
    expect(lb.spec).toMatchObject({
      allocateLoadBalancerNodePorts: true,
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } },
    });
    const en = defaulted<Service>({
      apiVersion: "v1",
      kind: "Service",
      metadata: {},
      spec: { type: "ExternalName", externalName: "x.example" },
    });
    expect(en.spec).toEqual({ type: "ExternalName", externalName: "x.example", sessionAffinity: "None" });
  });

  it("Pods get the kubelet-facing defaults", () => {
    const p = defaulted<Pod>({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p" },
      spec: {
        containers: [
          {
            name: "c",
            image: "nginx",
            ports: [{ containerPort: 80 }],
            readinessProbe: { httpGet: { port: 80 } },
            env: [{ name: "IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } }],
            resources: { limits: { cpu: "1" } },
          },
          { name: "d", image: "busybox:1.36" },
        ],
      },
    });
    const c = p.spec!.containers[0];
    expect(c.imagePullPolicy).toBe("Always");
    expect(p.spec!.containers[1].imagePullPolicy).toBe("IfNotPresent");
    expect(c.terminationMessagePath).toBe("/dev/termination-log");
    expect(c.terminationMessagePolicy).toBe("File");
    expect(c.ports![0].protocol).toBe("TCP");
    expect(c.readinessProbe).toEqual({
      httpGet: { port: 80, path: "/", scheme: "HTTP" },
      timeoutSeconds: 1,
      periodSeconds: 10,
      successThreshold: 1,
      failureThreshold: 3,
    });
    expect(c.env![0].valueFrom!.fieldRef!.apiVersion).toBe("v1");
    expect(c.resources!.requests).toEqual({ cpu: "1" });
    expect(p.spec).toMatchObject({
      restartPolicy: "Always",
      dnsPolicy: "ClusterFirst",
      terminationGracePeriodSeconds: 30,
      schedulerName: "default-scheduler",
      serviceAccountName: "default",
      enableServiceLinks: true,
      priority: 0,
    });
    expect(p.spec!.tolerations).toEqual([
      {
        key: "node.kubernetes.io/not-ready",
        operator: "Exists",
        effect: "NoExecute",
        tolerationSeconds: 300,
      },
      {
        key: "node.kubernetes.io/unreachable",
        operator: "Exists",
        effect: "NoExecute",
        tolerationSeconds: 300,
      },
    ]);
    expect(p.status).toEqual({ phase: "Pending", qosClass: "Burstable" });
  });

  it("Deployments get replicas, strategy, history and template defaults", () => {
    const d = defaulted<Deployment>({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "web" },
      spec: {
        selector: { matchLabels: { app: "web" } },
        template: {
          metadata: { labels: { app: "web" } },
          spec: { containers: [{ name: "web", image: "nginx:1.27" }] },
        },
      },
    });
    expect(d.spec).toMatchObject({
      replicas: 1,
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "25%", maxSurge: "25%" } },
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 600,
    });
    expect(d.spec!.template.metadata!.creationTimestamp).toBeNull();
    expect(d.spec!.template.spec!.restartPolicy).toBe("Always");
    expect(d.spec!.template.spec!.containers[0].imagePullPolicy).toBe("IfNotPresent");
    expect(d.spec!.template.spec!.tolerations).toBeUndefined();
    expect(d.spec!.template.spec!.enableServiceLinks).toBeUndefined();
    expect(d.spec!.template.spec!.securityContext).toEqual({});
  });

  it("NetworkPolicies derive policyTypes as kube does", () => {
    const ingressOnly = defaulted<NetworkPolicy>({
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: {},
      spec: { podSelector: {}, ingress: [{ ports: [{ port: 80 }] }] },
    });
    expect(ingressOnly.spec!.policyTypes).toEqual(["Ingress"]);
    expect(ingressOnly.spec!.ingress![0].ports![0].protocol).toBe("TCP");
    const both = defaulted<NetworkPolicy>({
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: {},
      spec: { podSelector: {}, egress: [{}] },
    });
    expect(both.spec!.policyTypes).toEqual(["Ingress", "Egress"]);
  });

  it("Namespaces and Secrets", () => {
    const ns = defaulted<Namespace>({
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "production" },
    });
    expect(ns.metadata.labels).toEqual({ "kubernetes.io/metadata.name": "production" });
    expect(ns.status).toEqual({ phase: "Active" });
    expect(ns.spec).toEqual({ finalizers: ["kubernetes"] });
    const s = defaulted<Secret>({
      apiVersion: "v1",
      kind: "Secret",
      metadata: {},
      stringData: { user: "admin" },
    });
    expect(s.type).toBe("Opaque");
    expect(s.data).toEqual({ user: "YWRtaW4=" });
    expect(s.stringData).toBeUndefined();
  });

  it("is idempotent", () => {
    const once = defaulted<Pod>({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {},
      spec: { containers: [{ name: "c", image: "x" }] },
    });
    expect(defaulted<Pod>(once)).toEqual(once);
  });
});
