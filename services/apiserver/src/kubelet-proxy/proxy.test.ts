import { describe, expect, it } from "vitest";
import type { Node, Pod } from "@klab/api";
import { kubeletTarget, nodeKubeletAddress, type KubeletProxyOptions } from "./proxy.ts";

const pod = (over: Partial<Pod["spec"]> = {}, phase = "Running"): Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "web", namespace: "shop" },
  spec: { nodeName: "node-1", containers: [{ name: "app" }], ...over },
  status: { phase: phase as "Running" },
});
const opts = (p: Pod | undefined): KubeletProxyOptions => ({
  resolvePod: async () => p,
  resolveNodeAddress: async (n) => (n === "node-1" ? "172.29.0.3:10250" : undefined),
});
const target = (p: Pod | undefined, url: string) => kubeletTarget(opts(p), new URL(url, "https://api"));

describe("kubelet proxy: which kubelet URL an API request goes to", () => {
  it("maps logs with kubectl's parameters", async () => {
    expect(
      await target(pod(), "/api/v1/namespaces/shop/pods/web/log?follow=true&tailLines=10&timestamps=true"),
    ).toEqual({
      host: "172.29.0.3",
      port: 10250,
      path: "/containerLogs/shop/web/app?follow=true&timestamps=true&tailLines=10",
    });
  });
  it("maps exec with its command and streams", async () => {
    const t = await target(
      pod(),
      "/api/v1/namespaces/shop/pods/web/exec?command=sh&command=-c&command=echo%20hi&container=app&stdin=true&stdout=true&tty=true",
    );
    expect(t.path).toBe(
      "/exec/shop/web/app?command=sh&command=-c&command=echo+hi&stdin=true&stdout=true&tty=true",
    );
  });
  it("maps port-forward to the pod", async () => {
    expect((await target(pod(), "/api/v1/namespaces/shop/pods/web/portforward")).path).toBe(
      "/portForward/shop/web",
    );
  });
  it("answers as kube-apiserver for bad requests", async () => {
    await expect(target(undefined, "/api/v1/namespaces/shop/pods/web/log")).rejects.toMatchObject({
      status: { code: 404, message: 'pods "web" not found' },
    });
    await expect(
      target(pod({ nodeName: undefined }), "/api/v1/namespaces/shop/pods/web/log"),
    ).rejects.toMatchObject({
      status: { code: 400, message: "pod web does not have a host assigned" },
    });
    const two = pod({ containers: [{ name: "a" }, { name: "b" }] });
    await expect(target(two, "/api/v1/namespaces/shop/pods/web/log")).rejects.toMatchObject({
      status: { message: "a container name must be specified for pod web, choose one of: [a b]" },
    });
    await expect(target(pod(), "/api/v1/namespaces/shop/pods/web/log?container=zzz")).rejects.toMatchObject({
      status: { message: "container zzz is not valid for pod web" },
    });
    await expect(target(pod(), "/api/v1/namespaces/shop/pods/web/log?tailLines=-3")).rejects.toMatchObject({
      status: { code: 400 },
    });
    await expect(
      target(pod({}, "Succeeded"), "/api/v1/namespaces/shop/pods/web/exec?command=ls"),
    ).rejects.toMatchObject({
      status: { message: "cannot exec into a container in a completed pod; current phase is Succeeded" },
    });
    await expect(target(pod(), "/api/v1/namespaces/shop/pods/web/exec")).rejects.toMatchObject({
      status: { message: "you must specify at least 1 command" },
    });
    await expect(
      target(pod({ nodeName: "gone" }), "/api/v1/namespaces/shop/pods/web/log"),
    ).rejects.toMatchObject({ status: { code: 500 } });
  });
  it("dials the node's InternalIP on its kubelet port", () => {
    const node = {
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "n" },
      status: {
        addresses: [
          { type: "Hostname", address: "n" },
          { type: "InternalIP", address: "172.29.0.4" },
        ],
        daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      },
    } as Node;
    expect(nodeKubeletAddress(node)).toBe("172.29.0.4:10250");
  });
});
