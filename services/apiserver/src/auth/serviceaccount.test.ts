import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { KubeObject } from "@klab/api";
import type { StorageView } from "../options.ts";
import {
  answerTokenRequest,
  authenticateServiceAccount,
  serviceAccountAdmission,
  ServiceAccountTokens,
} from "./serviceaccount.ts";

function fakeStorage(objs: Record<string, KubeObject>): StorageView {
  return {
    list: () => [],
    get: (resource, ns, name) => objs[`${resource}/${ns}/${name}`],
  };
}

describe("service-account tokens", () => {
  const dir = mkdtempSync(join(tmpdir(), "klab-sa-"));
  const tokens = new ServiceAccountTokens(dir);
  const sa = {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name: "coredns", namespace: "kube-system", uid: "sa-1" },
  };
  const pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "coredns-x", namespace: "kube-system", uid: "pod-1" },
  };
  const storage = fakeStorage({
    "serviceaccounts/kube-system/coredns": sa,
    "pods/kube-system/coredns-x": pod,
  });

  it("TokenRequest issues a JWT bound to the pod that the API accepts while both exist", () => {
    const tr = answerTokenRequest(tokens, storage, "kube-system", "coredns", {
      spec: {
        expirationSeconds: 3607,
        boundObjectRef: { kind: "Pod", apiVersion: "v1", name: "coredns-x", uid: "pod-1" },
      },
    }) as unknown as {
      status: { token: string; expirationTimestamp: string };
      spec: { audiences: string[] };
    };
    expect(tr.spec.audiences).toEqual(["https://kubernetes.default.svc.cluster.local"]);
    const claims = tokens.verify(tr.status.token)!;
    expect(claims.sub).toBe("system:serviceaccount:kube-system:coredns");
    expect(claims["kubernetes.io"].pod).toEqual({ name: "coredns-x", uid: "pod-1" });
    expect(claims.exp - claims.iat).toBe(3607);
    expect(authenticateServiceAccount(tokens, storage, `Bearer ${tr.status.token}`)).toBe(
      "system:serviceaccount:kube-system:coredns",
    );
    // the pod was deleted and recreated: same name, new uid
    const recreated = fakeStorage({
      "serviceaccounts/kube-system/coredns": sa,
      "pods/kube-system/coredns-x": { ...pod, metadata: { ...pod.metadata, uid: "pod-2" } },
    });
    expect(authenticateServiceAccount(tokens, recreated, `Bearer ${tr.status.token}`)).toBeUndefined();
    // a new server on the same state dir keeps the key: tokens survive a restart
    expect(new ServiceAccountTokens(dir).verify(tr.status.token)).toBeDefined();
  });

  it("refuses tampered, expired, foreign-audience and garbage tokens", () => {
    const { token } = tokens.issue({
      namespace: "kube-system",
      serviceAccount: { name: "coredns", uid: "sa-1" },
    });
    const [h, b, s] = token.split(".");
    const forged = Buffer.from(b!, "base64url").toString().replace("coredns", "admin");
    expect(tokens.verify(`${h}.${Buffer.from(forged).toString("base64url")}.${s}`)).toBeUndefined();
    const old = tokens.issue({
      namespace: "kube-system",
      serviceAccount: { name: "coredns", uid: "sa-1" },
      now: Date.now() - 7200_000,
    });
    expect(tokens.verify(old.token)).toBeUndefined();
    const vault = tokens.issue({
      namespace: "kube-system",
      serviceAccount: { name: "coredns", uid: "sa-1" },
      audiences: ["vault"],
    });
    expect(tokens.verify(vault.token)).toBeUndefined();
    for (const bad of ["", "a.b", "a.b.c", "..", `${h}.${b}`, "x".repeat(5000)])
      expect(tokens.verify(bad)).toBeUndefined();
    expect(authenticateServiceAccount(tokens, storage, "Basic abc")).toBeUndefined();
    expect(new ServiceAccountTokens(mkdtempSync(join(tmpdir(), "klab-sa-"))).verify(token)).toBeUndefined();
  });

  it("TokenRequest errors as kube-apiserver gives them", () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return (err as { status: { code: number; reason: string } }).status;
      }
      return undefined;
    };
    expect(code(() => answerTokenRequest(tokens, storage, "kube-system", "nope", {}))).toMatchObject({
      code: 404,
      reason: "NotFound",
    });
    expect(
      code(() =>
        answerTokenRequest(tokens, storage, "kube-system", "coredns", { spec: { expirationSeconds: 60 } }),
      ),
    ).toMatchObject({
      code: 422,
      reason: "Invalid",
    });
    expect(
      code(() =>
        answerTokenRequest(tokens, storage, "kube-system", "coredns", {
          spec: { boundObjectRef: { kind: "Pod", name: "coredns-x", uid: "other" } },
        }),
      ),
    ).toMatchObject({ code: 409 });
    expect(
      code(() => answerTokenRequest(tokens, storage, "kube-system", "coredns", [] as never)),
    ).toMatchObject({ code: 400 });
  });

  it("admission mounts kube-api-access-xxxxx into every container unless automount is off", () => {
    const hooks = serviceAccountAdmission(() => storage);
    const p = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "a", namespace: "default" },
      spec: { containers: [{ name: "c" }, { name: "d" }] },
    } as unknown as KubeObject & {
      spec: {
        volumes: Array<{ name: string; projected: { sources: unknown[] } }>;
        containers: Array<{ volumeMounts: unknown[] }>;
      };
    };
    hooks.beforeCreate!(p, { dryRun: false });
    expect(p.spec.volumes).toHaveLength(1);
    expect(p.spec.volumes[0]!.name).toMatch(/^kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    expect(p.spec.volumes[0]!.projected.sources).toHaveLength(3);
    for (const c of p.spec.containers)
      expect(c.volumeMounts).toEqual([
        {
          name: p.spec.volumes[0]!.name,
          readOnly: true,
          mountPath: "/var/run/secrets/kubernetes.io/serviceaccount",
        },
      ]);
    const off = {
      metadata: { name: "b" },
      spec: { automountServiceAccountToken: false, containers: [{ name: "c" }] },
    } as unknown as KubeObject & { spec: { volumes?: unknown[] } };
    hooks.beforeCreate!(off, { dryRun: false });
    expect(off.spec.volumes).toBeUndefined();
  });
});
