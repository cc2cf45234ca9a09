// Bad input never crashes the apiserver and gets kube-apiserver's answer; a kill -9 loses no
// acknowledged write and resourceVersions keep increasing after the restart.
import { Agent, request } from "node:https";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWith } from "../support/prereq.ts";
import { startApiServer, type TestApiServer } from "../support/apiserver.ts";

interface Reply {
  status: number;
  contentType: string;
  body: string;
}

function client(api: TestApiServer) {
  const agent = new Agent({ ca: api.caPem, keepAlive: true, maxSockets: 16 });
  const send = (
    method: string,
    path: string,
    body?: string | Buffer,
    headers: Record<string, string> = {},
    token: string | null = api.token,
  ): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const h: Record<string, string | number> = { ...headers };
      if (token !== null) h.authorization = `Bearer ${token}`;
      if (body !== undefined) {
        h["content-type"] ??= "application/json";
        h["content-length"] = Buffer.byteLength(body);
      }
      const req = request(`${api.url}${path}`, { method, agent, headers: h }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers["content-type"] ?? ""),
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
        res.on("error", reject);
      });
      req.on("error", reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  return { send, close: () => agent.destroy() };
}

function status(r: Reply): { kind: string; code: number; reason: string; message: string } {
  expect(r.contentType).toContain("application/json");
  const s = JSON.parse(r.body);
  expect(s.kind).toBe("Status");
  expect(s.code).toBe(r.status);
  return s;
}

describeWith({ tools: ["kubectl"] }, "apiserver under bad input", () => {
  let api: TestApiServer;
  let http: ReturnType<typeof client>;
  beforeAll(async () => {
    api = await startApiServer();
    http = client(api);
  });
  afterAll(async () => {
    http?.close();
    await api?.stop();
  });

  it("answers 401 without a token or with a wrong one", async () => {
    for (const token of [null, "wrong", ""]) {
      const s = status(await http.send("GET", "/api/v1/namespaces", undefined, {}, token));
      expect(s).toMatchObject({ code: 401, reason: "Unauthorized", message: "Unauthorized" });
    }
    // health and version are public, as kube's system:public-info-viewer allows
    expect((await http.send("GET", "/healthz", undefined, {}, null)).body).toBe("ok");
    expect(JSON.parse((await http.send("GET", "/version", undefined, {}, null)).body).gitVersion).toMatch(
      /^v1\.32\./,
    );
    const k = await api.kubectl(["get", "pods", "--token", "wrong"]);
    expect(k.stderr).toContain("error: You must be logged in to the server");
    expect(k.code).toBe(1);
  });

  it("rejects malformed JSON and YAML with 400", async () => {
    let s = status(await http.send("POST", "/api/v1/namespaces/default/configmaps", "{not json"));
    expect(s.reason).toBe("BadRequest");
    expect(s.message).toContain("json parse error");
    s = status(
      await http.send("POST", "/api/v1/namespaces/default/configmaps", "a: [b\n", {
        "content-type": "application/yaml",
      }),
    );
    expect(s.reason).toBe("BadRequest");
    s = status(await http.send("POST", "/api/v1/namespaces/default/configmaps", "[1,2]"));
    expect(s.message).toBe("Object 'Kind' is missing in '[1,2]'");
    const k = await api.kubectl(["apply", "-f", "-"], {
      input: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n",
    });
    expect(k.code).toBe(1);
    expect(k.stderr).toContain("error");
  });

  it("refuses a 5 MB body with 413 and keeps serving", async () => {
    const big = JSON.stringify({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "big" },
      data: { blob: "x".repeat(5 * 1024 * 1024) },
    });
    const s = status(await http.send("POST", "/api/v1/namespaces/default/configmaps", big));
    expect(s).toMatchObject({
      code: 413,
      reason: "RequestEntityTooLarge",
      message: "Request entity too large: limit is 3145728",
    });
    expect((await http.send("GET", "/api/v1/namespaces/default/configmaps/big")).status).toBe(404);
  });

  it("answers unknown resources, methods and media types as kube does", async () => {
    let s = status(await http.send("GET", "/api/v1/widgets"));
    expect(s).toMatchObject({
      code: 404,
      reason: "NotFound",
      message: "the server could not find the requested resource",
    });
    s = status(await http.send("PUT", "/api/v1/namespaces/default/configmaps", "{}"));
    expect(s).toMatchObject({ code: 405, reason: "MethodNotAllowed" });
    await http.send(
      "POST",
      "/api/v1/namespaces/default/configmaps",
      JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "m" } }),
    );
    s = status(
      await http.send("PATCH", "/api/v1/namespaces/default/configmaps/m", "{}", {
        "content-type": "text/plain",
      }),
    );
    expect(s).toMatchObject({ code: 415, reason: "UnsupportedMediaType" });
    s = status(
      await http.send(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        JSON.stringify({ apiVersion: "apps/v1", kind: "ConfigMap", metadata: { name: "q" } }),
      ),
    );
    expect(s.message).toBe(
      "the API version in the data (apps/v1) does not match the expected API version (v1)",
    );
  });

  it("answers 410 Expired to a watch from before the server's window", async () => {
    // After a restart the window starts at the current resourceVersion, as kube's watch cache does.
    http.close();
    await api.restart();
    http = client(api);
    const s = status(await http.send("GET", "/api/v1/namespaces/default/pods?watch=true&resourceVersion=1"));
    expect(s).toMatchObject({ code: 410, reason: "Expired" });
    expect(s.message).toMatch(/^too old resource version: 1 \(\d+\)$/);
  });

  it("answers a conflict on a stale resourceVersion with kube's message", async () => {
    const cm = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "occ" }, data: { a: "1" } };
    const created = JSON.parse(
      (await http.send("POST", "/api/v1/namespaces/default/configmaps", JSON.stringify(cm))).body,
    );
    const first = { ...created, data: { a: "2" } };
    expect(
      (await http.send("PUT", "/api/v1/namespaces/default/configmaps/occ", JSON.stringify(first))).status,
    ).toBe(200);
    const stale = { ...created, data: { a: "3" } };
    const s = status(
      await http.send("PUT", "/api/v1/namespaces/default/configmaps/occ", JSON.stringify(stale)),
    );
    expect(s).toMatchObject({
      code: 409,
      reason: "Conflict",
      message:
        'Operation cannot be fulfilled on configmaps "occ": the object has been modified; please apply your changes to the latest version and try again',
    });
  });

  it("survives thousands of fuzzed requests and answers each with a Status or an object", async () => {
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const pick = <T>(xs: T[]): T => xs[rnd(xs.length)]!;
    const valid = [
      { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "f" }, data: { a: "b" } },
      { apiVersion: "v1", kind: "Service", metadata: { name: "f" }, spec: { ports: [{ port: 80 }] } },
      {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "f" },
        spec: { containers: [{ name: "c", image: "nginx" }] },
      },
      {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: "f" },
        spec: { selector: { matchLabels: { a: "b" } } },
      },
    ];
    const junk: unknown[] = [
      null,
      true,
      -1,
      1e308,
      "",
      "x".repeat(300),
      [],
      {},
      [{}],
      { $patch: "delete" },
      "\u0000",
      { a: { b: { c: [] } } },
    ];
    const mutate = (v: unknown, depth = 0): unknown => {
      if (depth > 6 || rnd(4) === 0) return pick(junk);
      if (Array.isArray(v)) return v.map((x) => mutate(x, depth + 1));
      if (v && typeof v === "object") {
        const o: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v))
          if (rnd(6) !== 0) o[rnd(10) === 0 ? `${k}$` : k] = rnd(3) ? x : mutate(x, depth + 1);
        return o;
      }
      return v;
    };
    const paths = [
      "/api/v1/namespaces/default/configmaps",
      "/api/v1/namespaces/default/services",
      "/api/v1/namespaces/default/pods",
      "/apis/apps/v1/namespaces/default/deployments",
      "/api/v1/namespaces/default/configmaps/f",
      "/api/v1/namespaces/default/services/f/status",
      "/apis/apps/v1/namespaces/default/deployments/f/scale",
      "/api/v1/namespaces/%ff/pods",
      "/api/v1/namespaces/default/pods?labelSelector=a%20in%20(",
      "/api/v1/pods?fieldSelector=spec.bogus%3Dx",
      "/api/v1/namespaces/default/configmaps?limit=abc",
      "/apis/apps/v1/namespaces/default/deployments?continue=garbage",
    ];
    const types = [
      "application/json",
      "application/yaml",
      "application/merge-patch+json",
      "application/json-patch+json",
      "application/strategic-merge-patch+json",
      "application/vnd.kubernetes.protobuf",
      "text/plain",
    ];
    const bodies = (): string | Buffer => {
      switch (rnd(5)) {
        case 0:
          return Buffer.from(Array.from({ length: rnd(200) }, () => rnd(256)));
        case 1:
          return JSON.stringify(mutate(pick(valid))).slice(0, 1 + rnd(400));
        case 2:
          return Buffer.concat([
            Buffer.from("k8s\0"),
            Buffer.from(Array.from({ length: rnd(100) }, () => rnd(256))),
          ]);
        default:
          return JSON.stringify(mutate(pick(valid)));
      }
    };
    let answered = 0;
    const worker = async () => {
      for (let i = 0; i < 250; i++) {
        const method = pick(["POST", "PUT", "PATCH", "DELETE", "GET"]);
        const r = await http.send(method, pick(paths), method === "GET" ? undefined : bodies(), {
          "content-type": pick(types),
        });
        expect(r.status).toBeGreaterThanOrEqual(200);
        expect(r.status).toBeLessThan(500);
        const v = JSON.parse(r.body);
        if (r.status >= 400) {
          expect(v.kind).toBe("Status");
          expect(v.code).toBe(r.status);
        } else expect(typeof v.kind).toBe("string");
        answered++;
      }
    };
    await Promise.all(Array.from({ length: 12 }, worker));
    expect(answered).toBe(3000);
    expect((await http.send("GET", "/readyz")).body).toBe("ok");
  }, 240_000);
});

describeWith({ tools: ["kubectl"] }, "apiserver durability", () => {
  it("keeps every acknowledged write across kill -9, and resourceVersions keep increasing", async () => {
    const api = await startApiServer();
    const http = client(api);
    try {
      const acked: Array<{ name: string; rv: number }> = [];
      let stop = false;
      const writer = async (w: number) => {
        for (let i = 0; !stop; i++) {
          const name = `w${w}-${i}`;
          const body = JSON.stringify({
            apiVersion: "v1",
            kind: "ConfigMap",
            metadata: { name },
            data: { i: String(i) },
          });
          try {
            const r = await http.send("POST", "/api/v1/namespaces/default/configmaps", body);
            if (r.status === 201)
              acked.push({ name, rv: Number(JSON.parse(r.body).metadata.resourceVersion) });
          } catch {
            return; // the server died under us: what it did not acknowledge may be lost
          }
        }
      };
      const writers = Array.from({ length: 8 }, (_, w) => writer(w));
      const deadline = Date.now() + 120_000;
      while (acked.length < 400 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(acked.length).toBeGreaterThanOrEqual(400);
      await api.kill9();
      stop = true;
      await Promise.all(writers);
      await api.restart();
      const list = JSON.parse((await http.send("GET", "/api/v1/namespaces/default/configmaps")).body);
      const stored = new Map<string, number>(
        list.items.map((o: { metadata: { name: string; resourceVersion: string } }) => [
          o.metadata.name,
          Number(o.metadata.resourceVersion),
        ]),
      );
      for (const a of acked) expect(stored.get(a.name), a.name).toBe(a.rv);
      const maxRv = Math.max(...acked.map((a) => a.rv));
      expect(Number(list.metadata.resourceVersion)).toBeGreaterThanOrEqual(maxRv);
      const next = await http.send(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "after-restart" } }),
      );
      expect(next.status).toBe(201);
      expect(Number(JSON.parse(next.body).metadata.resourceVersion)).toBeGreaterThan(
        Number(list.metadata.resourceVersion) - 1,
      );
      expect(Number(JSON.parse(next.body).metadata.resourceVersion)).toBeGreaterThan(maxRv);
      const k = await api.kubectl(["get", "cm", "after-restart", "-o", "name"]);
      expect(k.stdout).toBe("configmap/after-restart\n");
    } finally {
      http.close();
      await api.stop();
    }
  }, 240_000);
});
