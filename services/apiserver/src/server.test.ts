import { mkdtempSync, rmSync } from "node:fs";
import { Agent, request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { KubeObject } from "@klab/api";
import { parseConfig } from "./config.ts";
import type { AdmissionHooks, HookContext } from "./registry/hooks.ts";
import { createApiServer, type ApiServer } from "./server.ts";

const dirs: string[] = [];
const servers: ApiServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function call(s: ApiServer, method: string, path: string, body?: unknown) {
  return new Promise<{ status: number; body: any }>((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string | number> = { authorization: `Bearer ${s.token}` };
    if (data)
      Object.assign(headers, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(data),
      });
    const req = request(`${s.url}${path}`, { method, headers, agent: new Agent({ ca: s.caPem }) }, (res) => {
      let t = "";
      res.on("data", (d: Buffer) => (t += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(t) }));
    });
    req.on("error", reject);
    req.end(data);
  });
}

const cm = (name: string) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data: { a: "1" } });

describe("createApiServer REST", () => {
  it("deletes a collection by label selector, and pages a list with limit/continue", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "klab-rest-"));
    dirs.push(stateDir);
    const s = await createApiServer(parseConfig({ stateDir, port: 0 }), {
      logger: pino({ level: "silent" }),
    });
    servers.push(s);
    const base = "/api/v1/namespaces/default/configmaps";
    for (const [name, team] of [
      ["a", "x"],
      ["b", "y"],
      ["c", "x"],
      ["d", "x"],
    ]) {
      expect(
        (await call(s, "POST", base, { ...cm(name!), metadata: { name, labels: { team } } })).status,
      ).toBe(201);
    }
    const page1 = await call(s, "GET", `${base}?limit=2`);
    expect(page1.body.items.map((o: KubeObject) => o.metadata.name)).toEqual(["a", "b"]);
    expect(page1.body.metadata.remainingItemCount).toBe(2);
    const page2 = await call(
      s,
      "GET",
      `${base}?limit=2&continue=${encodeURIComponent(page1.body.metadata.continue)}`,
    );
    expect(page2.body.items.map((o: KubeObject) => o.metadata.name)).toEqual(["c", "d"]);
    expect(page2.body.metadata.continue).toBeUndefined();
    expect(page2.body.metadata.resourceVersion).toBe(page1.body.metadata.resourceVersion);

    const gone = await call(s, "DELETE", `${base}?labelSelector=team%3Dx`);
    expect(gone.status).toBe(200);
    expect(gone.body.kind).toBe("ConfigMapList");
    expect(gone.body.items.map((o: KubeObject) => o.metadata.name)).toEqual(["a", "c", "d"]);
    const left = await call(s, "GET", base);
    expect(left.body.items.map((o: KubeObject) => o.metadata.name)).toEqual(["b"]);
    const ns = await call(s, "DELETE", "/api/v1/namespaces");
    expect(ns.status).toBe(405);
  });
});

describe("createApiServer deletion", () => {
  it("keeps a pod in graceful deletion through its kubelet's status updates until a delete of grace 0", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "klab-grace-"));
    dirs.push(stateDir);
    const s = await createApiServer(parseConfig({ stateDir, port: 0 }), {
      logger: pino({ level: "silent" }),
    });
    servers.push(s);
    expect(
      (await call(s, "POST", "/api/v1/nodes", { apiVersion: "v1", kind: "Node", metadata: { name: "n1" } }))
        .status,
    ).toBe(201);
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p" },
      spec: { nodeName: "n1", containers: [{ name: "c", image: "nginx" }] },
    };
    const base = "/api/v1/namespaces/default/pods";
    expect((await call(s, "POST", base, pod)).status).toBe(201);
    const deleting = await call(s, "DELETE", `${base}/p`, { gracePeriodSeconds: 5 });
    expect(deleting.body.metadata.deletionGracePeriodSeconds).toBe(5);
    const status = { ...deleting.body, status: { phase: "Running", podIP: "10.244.0.5" } };
    expect((await call(s, "PUT", `${base}/p/status`, status)).status).toBe(200);
    const still = await call(s, "GET", `${base}/p`);
    expect(still.status).toBe(200);
    expect(still.body.status.podIP).toBe("10.244.0.5");
    expect((await call(s, "DELETE", `${base}/p`, { gracePeriodSeconds: 0 })).status).toBe(200);
    expect((await call(s, "GET", `${base}/p`)).status).toBe(404);
  });
});

describe("createApiServer admission hooks", () => {
  it("calls hooks on create, update and delete, with dryRun in their context", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "klab-hooks-"));
    dirs.push(stateDir);
    const calls: string[] = [];
    const hooks: AdmissionHooks = {
      beforeCreate(obj: KubeObject, ctx: HookContext) {
        calls.push(`create ${obj.metadata.name} dryRun=${ctx.dryRun}`);
        if (obj.metadata.name === "refused") {
          return [
            { type: "FieldValueForbidden", field: "metadata.name", detail: "this name is taken by the test" },
          ];
        }
        obj.metadata.annotations = { "klab.test/admitted": "yes" };
      },
      beforeUpdate(obj: KubeObject, old: KubeObject) {
        calls.push(`update ${old.metadata.resourceVersion}`);
        return (obj as { data?: Record<string, string> }).data?.a === "bad"
          ? [{ type: "FieldValueInvalid", field: "data.a", badValue: "bad", detail: "not allowed" }]
          : undefined;
      },
      afterDelete(old: KubeObject) {
        calls.push(`deleted ${old.metadata.name}`);
      },
    };
    let stopped = false;
    const s = await createApiServer(parseConfig({ stateDir, port: 0 }), {
      hooks: { configmaps: hooks },
      logger: pino({ level: "silent" }),
      onStarted: (ctx) => {
        expect(ctx.url).toBe(s0url(ctx.url));
        return { stop: () => void (stopped = true) };
      },
    });
    servers.push(s);
    const base = "/api/v1/namespaces/default/configmaps";

    const created = await call(s, "POST", base, cm("ok"));
    expect(created.status).toBe(201);
    expect(created.body.metadata.annotations).toEqual({ "klab.test/admitted": "yes" });

    const refused = await call(s, "POST", base, cm("refused"));
    expect(refused.status).toBe(422);
    expect(refused.body.reason).toBe("Invalid");
    expect(refused.body.message).toBe(
      'ConfigMap "refused" is invalid: metadata.name: Forbidden: this name is taken by the test',
    );

    expect((await call(s, "POST", `${base}?dryRun=All`, cm("dry"))).status).toBe(201);
    expect((await call(s, "GET", `${base}/dry`)).status).toBe(404);

    const bad = await call(s, "PUT", `${base}/ok`, { ...created.body, data: { a: "bad" } });
    expect(bad.status).toBe(422);
    expect(bad.body.details.causes).toEqual([
      { reason: "FieldValueInvalid", message: 'Invalid value: "bad": not allowed', field: "data.a" },
    ]);

    expect((await call(s, "DELETE", `${base}/ok?dryRun=All`)).status).toBe(200);
    expect((await call(s, "DELETE", `${base}/ok`)).status).toBe(200);
    expect(calls).toEqual([
      "create ok dryRun=false",
      "create refused dryRun=false",
      "create dry dryRun=true",
      `update ${created.body.metadata.resourceVersion}`,
      "deleted ok",
    ]);
    await s.close();
    expect(stopped).toBe(true);
  });

  it("shows stored objects to onStorageReady before the first write of a restart", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "klab-ready-"));
    dirs.push(stateDir);
    const logger = pino({ level: "silent" });
    const first = await createApiServer(parseConfig({ stateDir, port: 0 }), { logger });
    expect((await call(first, "POST", "/api/v1/namespaces/default/configmaps", cm("kept"))).status).toBe(201);
    await first.close();
    let seen: string[] = [];
    const second = await createApiServer(parseConfig({ stateDir, port: 0 }), {
      logger,
      onStorageReady: (storage) => {
        seen = storage.list("configmaps").map((o) => o.metadata.name!);
        expect(storage.get("services", "default", "kubernetes")?.kind).toBe("Service");
      },
    });
    servers.push(second);
    expect(seen).toEqual(["kept"]);
  });
});

function s0url(u: string): string {
  expect(u).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  return u;
}
