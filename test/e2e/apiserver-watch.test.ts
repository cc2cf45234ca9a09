// Watches as kubectl and @kubernetes/client-node use them: `kubectl get -w` streams, client-node
// lists and watches, and the raw protocol (resourceVersion, bookmarks only when asked, initial
// events, selector transitions, timeoutSeconds).
import { spawn } from "node:child_process";
import { Agent, request } from "node:https";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWith } from "../support/prereq.ts";
import { startApiServer, type TestApiServer } from "../support/apiserver.ts";

async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describeWith({ tools: ["kubectl"] }, "apiserver watches", () => {
  let api: TestApiServer;
  let agent: Agent;
  beforeAll(async () => {
    api = await startApiServer();
    agent = new Agent({ ca: api.caPem, keepAlive: true });
  });
  afterAll(async () => {
    agent?.destroy();
    await api?.stop();
  });

  /** Opens a raw watch; collects its events until closed. */
  const rawWatch = (path: string) => {
    const events: Array<{ type: string; object: { kind: string; metadata: Record<string, unknown> } }> = [];
    let ended = false;
    let buf = "";
    const req = request(
      `${api.url}${path}`,
      { agent, headers: { authorization: `Bearer ${api.token}` } },
      (res) => {
        expect(res.statusCode).toBe(200);
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          buf += d;
          let nl: number;
          while ((nl = buf.indexOf("\n")) >= 0) {
            events.push(JSON.parse(buf.slice(0, nl)));
            buf = buf.slice(nl + 1);
          }
        });
        res.on("end", () => (ended = true));
        res.on("close", () => (ended = true));
      },
    );
    req.end();
    return { events, ended: () => ended, close: () => req.destroy() };
  };

  const cm = (name: string, labels: Record<string, string> = {}) =>
    JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, labels }, data: { a: "1" } });

  it("streams `kubectl get pods -w` as pods come and go", async () => {
    await api.kubectl(["create", "namespace", "watch-pods"]);
    expect((await api.kubectl(["run", "w1", "-n", "watch-pods", "--image=nginx"])).stdout).toBe(
      "pod/w1 created\n",
    );
    const p = spawn("kubectl", ["get", "pods", "-n", "watch-pods", "-w"], {
      env: { ...process.env, KUBECONFIG: api.kubeconfig },
    });
    let out = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (out += d.toString()));
    try {
      await until(() => /^w1\s/m.test(out), "the w1 row");
      expect(out).toMatch(/^NAME\s/m);
      const rows = () => out.split("\n").filter((l) => l.startsWith("w1 ")).length;
      const before = rows();
      await api.kubectl(["label", "pod", "w1", "-n", "watch-pods", "tier=fe"]);
      await until(() => rows() > before, "a row for the label change");
      await api.kubectl(["run", "w2", "-n", "watch-pods", "--image=nginx"]);
      await until(() => /^w2\s/m.test(out), "the w2 row from the watch");
      await api.kubectl(["delete", "pod", "w1", "-n", "watch-pods", "--wait=false"]);
      await until(() => rows() > before + 1, "a row for the deletion");
      expect(out).not.toContain("<unknown>");
    } finally {
      p.kill();
    }
  });

  it("sends changes after a resourceVersion, and bookmarks only when asked", async () => {
    const list = await fetchJson("/api/v1/namespaces/default/configmaps");
    const w = rawWatch(
      `/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${list.metadata.resourceVersion}`,
    );
    const b = rawWatch(
      `/api/v1/namespaces/default/configmaps?watch=true&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan`,
    );
    await post("/api/v1/namespaces/default/configmaps", cm("rv1"));
    await until(() => w.events.some((e) => e.object.metadata.name === "rv1"), "rv1 ADDED");
    expect(w.events.map((e) => e.type)).toEqual(["ADDED"]);
    await until(() => b.events.some((e) => e.type === "BOOKMARK"), "the initial-events-end bookmark");
    const bm = b.events.find((e) => e.type === "BOOKMARK")!;
    expect(bm.object.kind).toBe("ConfigMap");
    expect(bm.object.metadata.annotations).toEqual({ "k8s.io/initial-events-end": "true" });
    w.close();
    b.close();
  });

  it("turns selector transitions into ADDED and DELETED, and ends at timeoutSeconds", async () => {
    const w = rawWatch(
      `/api/v1/namespaces/default/configmaps?watch=1&labelSelector=app%3Dsel&timeoutSeconds=3`,
    );
    await post("/api/v1/namespaces/default/configmaps", cm("sel", { app: "other" }));
    await patch("/api/v1/namespaces/default/configmaps/sel", { metadata: { labels: { app: "sel" } } });
    await patch("/api/v1/namespaces/default/configmaps/sel", { data: { a: "2" } });
    await patch("/api/v1/namespaces/default/configmaps/sel", { metadata: { labels: { app: "gone" } } });
    await until(() => w.events.length >= 3, "three events");
    expect(w.events.map((e) => e.type)).toEqual(["ADDED", "MODIFIED", "DELETED"]);
    await until(() => w.ended(), "the stream to end at timeoutSeconds", 10_000);
  });

  it("works with @kubernetes/client-node: list, create and watch", async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(api.kubeconfig);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const ns = await core.listNamespace();
    expect(ns.items.map((n) => n.metadata?.name)).toContain("kube-system");
    const seen: string[] = [];
    const watch = new k8s.Watch(kc);
    const ctl = await watch.watch(
      "/api/v1/namespaces/default/configmaps",
      { labelSelector: "from=client-node" },
      (type, obj: k8s.V1ConfigMap) => seen.push(`${type} ${obj.metadata?.name}`),
      () => {},
    );
    await core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "cn", labels: { from: "client-node" } }, data: { k: "v" } },
    });
    const got = await core.readNamespacedConfigMap({ name: "cn", namespace: "default" });
    expect(got.data).toEqual({ k: "v" });
    await core.deleteNamespacedConfigMap({ name: "cn", namespace: "default" });
    await until(() => seen.includes("DELETED cn"), "client-node to see the deletion");
    expect(seen).toEqual(["ADDED cn", "DELETED cn"]);
    ctl.abort();
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    const deps = await apps.listDeploymentForAllNamespaces();
    expect(Array.isArray(deps.items)).toBe(true);
  });

  function send(method: string, path: string, body?: string, type = "application/json"): Promise<any> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { authorization: `Bearer ${api.token}` };
      if (body) Object.assign(headers, { "content-type": type, "content-length": Buffer.byteLength(body) });
      const req = request(`${api.url}${path}`, { method, agent, headers }, (res) => {
        let s = "";
        res.on("data", (d: Buffer) => (s += d.toString()));
        res.on("end", () => {
          const v = JSON.parse(s);
          if ((res.statusCode ?? 500) >= 300) reject(new Error(`${method} ${path}: ${s}`));
          else resolve(v);
        });
      });
      req.on("error", reject);
      req.end(body);
    });
  }
  const fetchJson = (path: string) => send("GET", path);
  const post = (path: string, body: string) => send("POST", path, body);
  const patch = (path: string, body: unknown) =>
    send("PATCH", path, JSON.stringify(body), "application/strategic-merge-patch+json");
});
