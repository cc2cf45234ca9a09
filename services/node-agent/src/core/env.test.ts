import { describe, expect, it } from "vitest";
import type { Pod, Service } from "@klab/api";
import { buildContainerEnv, expand, serviceEnv } from "./env.ts";

const svc = (
  name: string,
  ns: string,
  ip: string,
  ports: Service["spec"] extends infer S ? (S extends { ports?: infer P } ? P : never) : never,
): Service => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name, namespace: ns },
  spec: { clusterIP: ip, ports },
});
const pod: Pod = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "client", namespace: "shop", uid: "uid-1", labels: { app: "c" } },
  spec: {
    nodeName: "node-1",
    serviceAccountName: "default",
    containers: [
      {
        name: "c",
        env: [
          { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
          { name: "POD_NS", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
          { name: "POD_UID", valueFrom: { fieldRef: { fieldPath: "metadata.uid" } } },
          { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
          { name: "HOST_IP", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } },
          { name: "NODE", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
          { name: "SA", valueFrom: { fieldRef: { fieldPath: "spec.serviceAccountName" } } },
          { name: "APP", valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
          {
            name: "URL",
            value: "http://$(WEB_SERVICE_SERVICE_HOST):$(WEB_SERVICE_SERVICE_PORT)/$(UNKNOWN)$$",
          },
        ],
      },
    ],
  },
};

describe("container environment", () => {
  it("writes Service variables the docker-link way", () => {
    const env = new Map(
      serviceEnv([
        svc("web-service", "shop", "10.96.10.20", [
          { name: "http", port: 80, protocol: "TCP" },
          { port: 53, protocol: "UDP" },
        ]),
      ]),
    );
    expect(Object.fromEntries(env)).toEqual({
      WEB_SERVICE_SERVICE_HOST: "10.96.10.20",
      WEB_SERVICE_SERVICE_PORT: "80",
      WEB_SERVICE_SERVICE_PORT_HTTP: "80",
      WEB_SERVICE_PORT: "tcp://10.96.10.20:80",
      WEB_SERVICE_PORT_80_TCP: "tcp://10.96.10.20:80",
      WEB_SERVICE_PORT_80_TCP_PROTO: "tcp",
      WEB_SERVICE_PORT_80_TCP_PORT: "80",
      WEB_SERVICE_PORT_80_TCP_ADDR: "10.96.10.20",
      WEB_SERVICE_PORT_53_UDP: "udp://10.96.10.20:53",
      WEB_SERVICE_PORT_53_UDP_PROTO: "udp",
      WEB_SERVICE_PORT_53_UDP_PORT: "53",
      WEB_SERVICE_PORT_53_UDP_ADDR: "10.96.10.20",
    });
  });
  it("skips headless Services and those of other namespaces, keeps kubernetes from default", () => {
    const services = [
      svc("web-service", "shop", "10.96.10.20", [{ port: 80 }]),
      svc("headless", "shop", "None", [{ port: 80 }]),
      svc("other", "elsewhere", "10.96.0.50", [{ port: 80 }]),
      svc("kubernetes", "default", "10.96.0.1", [{ name: "https", port: 443 }]),
    ];
    const env = new Map(
      buildContainerEnv(
        pod,
        pod.spec!.containers[0],
        { services, configMaps: new Map(), secrets: new Map() },
        { podIP: "10.244.1.7", hostIP: "172.29.0.3", nodeName: "node-1" },
      ),
    );
    expect(env.get("KUBERNETES_SERVICE_HOST")).toBe("10.96.0.1");
    expect(env.get("KUBERNETES_SERVICE_PORT_HTTPS")).toBe("443");
    expect(env.has("HEADLESS_SERVICE_HOST")).toBe(false);
    expect(env.has("OTHER_SERVICE_HOST")).toBe(false);
    expect([
      env.get("POD_NAME"),
      env.get("POD_NS"),
      env.get("POD_UID"),
      env.get("POD_IP"),
      env.get("HOST_IP"),
      env.get("NODE"),
      env.get("SA"),
      env.get("APP"),
    ]).toEqual(["client", "shop", "uid-1", "10.244.1.7", "172.29.0.3", "node-1", "default", "c"]);
    expect(env.get("URL")).toBe("http://10.96.10.20:80/$(UNKNOWN)$");
  });
  it("enableServiceLinks: false leaves only the kubernetes Service", () => {
    const p: Pod = { ...pod, spec: { ...pod.spec!, enableServiceLinks: false } };
    const env = new Map(
      buildContainerEnv(
        p,
        { name: "c" },
        {
          services: [
            svc("web", "shop", "10.96.1.1", [{ port: 80 }]),
            svc("kubernetes", "default", "10.96.0.1", [{ port: 443 }]),
          ],
          configMaps: new Map(),
          secrets: new Map(),
        },
        { hostIP: "h", nodeName: "n" },
      ),
    );
    expect(env.has("WEB_SERVICE_HOST")).toBe(false);
    expect(env.get("KUBERNETES_SERVICE_HOST")).toBe("10.96.0.1");
  });
  it("a missing ConfigMap key is a CreateContainerConfigError", () => {
    expect(() =>
      buildContainerEnv(
        pod,
        { name: "c", env: [{ name: "X", valueFrom: { configMapKeyRef: { name: "cfg", key: "k" } } }] },
        { services: [], configMaps: new Map(), secrets: new Map() },
        { hostIP: "h", nodeName: "n" },
      ),
    ).toThrow(/couldn't find key k in ConfigMap shop\/cfg/);
  });
  it("expands $(VAR) like kubelet", () => {
    expect(expand("a$(X)b$$(X)c$(Y", (n) => (n === "X" ? "1" : undefined))).toBe("a1b$(X)c$(Y");
  });
});
