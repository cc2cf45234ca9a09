import { lstatSync, mkdtempSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ConfigMap, Pod, Secret } from "@klab/api";
import { PodVolumes, VolumeError } from "./volumes.ts";

function setup(cms: Record<string, ConfigMap>, secrets: Record<string, Secret> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "klab-vol-"));
  let issued = 0;
  const vols = new PodVolumes(dir, {
    configMap: async (_ns, name) => cms[name],
    secret: async (_ns, name) => secrets[name],
    serviceAccountToken: async (_pod, _aud, exp) => ({
      token: `token-${++issued}`,
      expirationTimestamp: new Date(Date.now() + exp * 1000).toISOString(),
    }),
  });
  return { dir, vols, issued: () => issued };
}

const pod = (volumes: unknown[], mounts: unknown[]): Pod =>
  ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p", namespace: "ns1", uid: "u1", labels: { app: "web", tier: "a b" } },
    spec: { nodeName: "node-1", volumes, containers: [{ name: "c", volumeMounts: mounts }] },
  }) as unknown as Pod;

describe("pod volumes", () => {
  it("writes a ConfigMap with the atomic writer layout and swaps it on change", async () => {
    const cm = { metadata: { name: "coredns" }, data: { Corefile: ".:53 {}\n" } } as unknown as ConfigMap;
    const { dir, vols } = setup({ coredns: cm });
    const p = pod(
      [{ name: "config", configMap: { name: "coredns" } }],
      [{ name: "config", mountPath: "/etc/coredns" }],
    );
    expect(await vols.sync(p)).toEqual(["config"]);
    const vdir = join(dir, "volumes/kubernetes.io~configmap/config");
    expect(readlinkSync(join(vdir, "Corefile"))).toBe("..data/Corefile");
    expect(readFileSync(join(vdir, "Corefile"), "utf8")).toBe(".:53 {}\n");
    const first = readlinkSync(join(vdir, "..data"));
    expect(await vols.sync(p)).toEqual([]);
    cm.data = { Corefile: ".:53 { log }\n" };
    expect(await vols.sync(p)).toEqual(["config"]);
    expect(readlinkSync(join(vdir, "..data"))).not.toBe(first);
    expect(readFileSync(join(vdir, "Corefile"), "utf8")).toBe(".:53 { log }\n");
    expect(vols.mounts(p)).toEqual([
      { source: vdir, mountPath: "/etc/coredns", kind: "dir", readOnly: true },
    ]);
  });

  it("projects a pod-bound token, the CA and the namespace; renews the token at 80% of its life", async () => {
    const ca = { metadata: { name: "kube-root-ca.crt" }, data: { "ca.crt": "PEM" } } as unknown as ConfigMap;
    const { dir, vols, issued } = setup({ "kube-root-ca.crt": ca });
    const p = pod(
      [
        {
          name: "kube-api-access-abcde",
          projected: {
            defaultMode: 420,
            sources: [
              { serviceAccountToken: { expirationSeconds: 3607, path: "token" } },
              { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
              {
                downwardAPI: {
                  items: [{ path: "namespace", fieldRef: { fieldPath: "metadata.namespace" } }],
                },
              },
            ],
          },
        },
      ],
      [
        {
          name: "kube-api-access-abcde",
          mountPath: "/var/run/secrets/kubernetes.io/serviceaccount",
          readOnly: true,
        },
      ],
    );
    await vols.sync(p);
    const vdir = join(dir, "volumes/kubernetes.io~projected/kube-api-access-abcde");
    expect(readFileSync(join(vdir, "token"), "utf8")).toBe("token-1");
    expect(readFileSync(join(vdir, "ca.crt"), "utf8")).toBe("PEM");
    expect(readFileSync(join(vdir, "namespace"), "utf8")).toBe("ns1");
    expect(statSync(join(vdir, "token")).mode & 0o777).toBe(0o644);
    await vols.sync(p);
    expect(issued()).toBe(1);
  });

  it("secrets, downward API labels, emptyDir and hostPath", async () => {
    const s = {
      metadata: { name: "tls" },
      data: { "tls.crt": Buffer.from("CRT").toString("base64") },
    } as unknown as Secret;
    const { dir, vols } = setup({}, { tls: s });
    const host = mkdtempSync(join(tmpdir(), "klab-vol-host-"));
    const p = pod(
      [
        { name: "tls", secret: { secretName: "tls", defaultMode: 0o400 } },
        {
          name: "info",
          downwardAPI: { items: [{ path: "labels", fieldRef: { fieldPath: "metadata.labels" } }] },
        },
        { name: "scratch", emptyDir: {} },
        { name: "host", hostPath: { path: join(host, "made"), type: "DirectoryOrCreate" } },
      ],
      [
        { name: "tls", mountPath: "/tls" },
        { name: "info", mountPath: "/etc/podinfo" },
        { name: "scratch", mountPath: "/cache" },
        { name: "host", mountPath: "/host" },
      ],
    );
    await vols.sync(p);
    expect(readFileSync(join(dir, "volumes/kubernetes.io~secret/tls/tls.crt"), "utf8")).toBe("CRT");
    expect(statSync(join(dir, "volumes/kubernetes.io~secret/tls/tls.crt")).mode & 0o777).toBe(0o400);
    expect(readFileSync(join(dir, "volumes/kubernetes.io~downward-api/info/labels"), "utf8")).toBe(
      'app="web"\ntier="a b"',
    );
    expect(lstatSync(join(host, "made")).isDirectory()).toBe(true);
    expect(vols.mounts(p).map((m) => [m.mountPath, m.readOnly])).toEqual([
      ["/tls", true],
      ["/etc/podinfo", true],
      ["/cache", false],
      ["/host", false],
    ]);
  });

  it("a missing ConfigMap, a bad key path or an unknown volume fail as kubelet's FailedMount", async () => {
    const { vols } = setup({
      evil: { metadata: { name: "evil" }, data: { "../x": "y" } } as unknown as ConfigMap,
    });
    await expect(vols.sync(pod([{ name: "c", configMap: { name: "nope" } }], []))).rejects.toThrow(
      'MountVolume.SetUp failed for volume "c" : configmap "nope" not found',
    );
    expect(await vols.sync(pod([{ name: "c", configMap: { name: "nope", optional: true } }], []))).toEqual([
      "c",
    ]);
    await expect(vols.sync(pod([{ name: "c", configMap: { name: "evil" } }], []))).rejects.toThrow(
      /invalid path/,
    );
    expect(() => vols.mounts(pod([], [{ name: "ghost", mountPath: "/x" }]))).toThrow(VolumeError);
    await expect(vols.sync(pod([{ name: "n", nfs: { server: "x" } }], []))).rejects.toThrow(/not supported/);
  });
});
