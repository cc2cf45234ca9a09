import { afterAll, beforeAll, expect, it } from "vitest";
import http from "node:http";
import { describeWith } from "../support/prereq.ts";
import {
  startController,
  startUpstreamGroup,
  type Controller,
  type Objects,
  type Upstream,
} from "../../services/ingress/src/harness.ts";
import { endpointSlice, ingress, service } from "../../services/ingress/src/fixtures.ts";

/** Objects for one Deployment revision: the Service's endpoints are `pods`. */
function objects(pods: Upstream[], path = "/"): Objects {
  return {
    ingresses: [
      ingress("app", {
        created: "2026-01-01T00:00:00Z",
        rules: [{ host: "app.com", paths: [{ path, service: "app" }] }],
      }),
    ],
    services: [service("app", { port: 80 })],
    slices: [
      endpointSlice(
        "app",
        pods.map((p) => ({ ip: p.ip })),
        { port: pods[0].port },
      ),
    ],
  };
}

describeWith({}, "ingress configuration changes under keep-alive load", () => {
  let ctl: Controller;
  let v1: Upstream[];
  let v2: Upstream[];

  beforeAll(async () => {
    v1 = await startUpstreamGroup("v1", 2);
    v2 = await startUpstreamGroup("v2", 2);
    ctl = await startController(objects(v1), { accessLog: false });
  });
  afterAll(async () => {
    await ctl?.close();
    for (const u of [...(v1 ?? []), ...(v2 ?? [])]) await u.close();
  });

  it("a rolling update and repeated table swaps lose no request and keep client connections open", async () => {
    let connections = 0;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    const create = agent.createConnection.bind(agent);
    agent.createConnection = ((...args: Parameters<typeof create>) => {
      connections++;
      return create(...args);
    }) as typeof agent.createConnection;

    const failures: string[] = [];
    const seen = new Set<string>();
    let done = 0;
    let stop = false;
    const get = () =>
      new Promise<void>((resolve) => {
        const req = http.request(
          { host: "127.0.0.1", port: ctl.http, path: "/x", agent, headers: { host: "app.com" } },
          (res) => {
            let body = "";
            res.on("data", (c) => (body += c));
            res.on("end", () => {
              if (res.statusCode !== 200) failures.push(`status ${res.statusCode}`);
              else seen.add(JSON.parse(body).upstream.split("-")[0]);
              done++;
              resolve();
            });
          },
        );
        req.on("error", (err) => {
          failures.push(err.message);
          resolve();
        });
        req.end();
      });
    const workers = Array.from({ length: 16 }, async () => {
      while (!stop) await get();
    });

    const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const until = async (cond: () => boolean) => {
      while (!cond()) await wait(10);
    };
    // Rolling update: v2 pods join, v1 pods leave the endpoints, then v1 pods shut down gracefully.
    await until(() => done > 200);
    ctl.apply(objects([...v1, ...v2]));
    await until(() => done > 400);
    ctl.apply(objects(v2));
    const drained = done;
    await until(() => done > drained + 200);
    for (const u of v1) {
      u.server.close();
      u.server.closeIdleConnections();
    }
    // And many swaps in a row, as a busy cluster's informer events would cause.
    for (let i = 0; i < 50; i++) {
      ctl.apply(objects(v2, i % 2 ? "/" : "/x"));
      await wait(5);
    }
    const before = done;
    await until(() => done > before + 200);
    stop = true;
    await Promise.all(workers);
    agent.destroy();

    expect(failures).toEqual([]);
    expect(seen).toEqual(new Set(["v1", "v2"]));
    expect(connections).toBeLessThanOrEqual(16);
  });
});
