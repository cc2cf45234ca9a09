import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ApiError, KubeClient, resourcePath } from "./client.ts";
import { Informer } from "./informer.ts";

/** A tiny HTTP API endpoint scripted per test; the real API server is exercised in test/e2e. */
async function serve(handler: (url: URL, res: ServerResponse, method: string) => void): Promise<{
  server: Server;
  client: KubeClient;
}> {
  const server = createServer((req, res) => handler(new URL(req.url!, "http://x"), res, req.method!));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return { server, client: new KubeClient({ server: `http://127.0.0.1:${port}`, token: "t0k" }) };
}

const svc = (name: string, rv: string) => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name, namespace: "default", resourceVersion: rv },
});

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup) await fn();
  cleanup = [];
});

describe("resourcePath", () => {
  it("puts core resources under /api and grouped ones under /apis", () => {
    expect(resourcePath("v1", "services", "default", "web")).toBe("/api/v1/namespaces/default/services/web");
    expect(resourcePath("apps/v1", "deployments", "x", "d", "scale")).toBe(
      "/apis/apps/v1/namespaces/x/deployments/d/scale",
    );
    expect(resourcePath("v1", "nodes")).toBe("/api/v1/nodes");
  });
});

describe("KubeClient", () => {
  it("returns undefined for a missing object and an ApiError with the server's Status otherwise", async () => {
    const { server, client } = await serve((url, res) => {
      const status = url.pathname.endsWith("/gone") ? 404 : 422;
      res.writeHead(status, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          kind: "Status",
          status: "Failure",
          reason: "Invalid",
          code: status,
          message: "bad",
        }),
      );
    });
    cleanup.push(async () => {
      await client.close();
      server.close();
    });
    expect(await client.get("v1", "services", "default", "gone")).toBeUndefined();
    const err = await client.create(svc("web", "") as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe(422);
    expect((err as ApiError).reason).toBe("Invalid");
  });

  it("parses watch events split across chunk boundaries", async () => {
    const { server, client } = await serve((_url, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      const text = JSON.stringify({ type: "ADDED", object: svc("a", "5") }) + "\n";
      res.write(text.slice(0, 17));
      setTimeout(() => {
        res.write(text.slice(17) + JSON.stringify({ type: "DELETED", object: svc("a", "6") }) + "\n");
        res.end();
      }, 20);
    });
    cleanup.push(async () => {
      await client.close();
      server.close();
    });
    const events: string[] = [];
    const watch = client.watch("v1", "services", {}, (e) =>
      events.push(`${e.type} ${e.object.metadata.name}`),
    );
    await watch.done;
    expect(events).toEqual(["ADDED a", "DELETED a"]);
  });
});

describe("Informer", () => {
  it("relists after 410 Gone and reports what changed meanwhile", async () => {
    let lists = 0;
    const { server, client } = await serve((url, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      if (url.searchParams.get("watch")) {
        if (lists === 1) {
          res.end(
            JSON.stringify({ type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired" } }) +
              "\n",
          );
        } else {
          setTimeout(() => res.end(), 5_000);
        }
        return;
      }
      lists++;
      const items = lists === 1 ? [svc("a", "1"), svc("b", "2")] : [svc("b", "7"), svc("c", "8")];
      res.end(
        JSON.stringify({ kind: "ServiceList", apiVersion: "v1", metadata: { resourceVersion: "9" }, items }),
      );
    });
    const informer = new Informer(client, "v1", "services", { maxBackoffMs: 50 });
    cleanup.push(async () => {
      informer.stop();
      await client.close();
      server.closeAllConnections();
      server.close();
    });
    const seen: string[] = [];
    informer.on("add", (o) => seen.push(`add ${o.metadata.name}`));
    informer.on("update", (o) => seen.push(`update ${o.metadata.name}`));
    informer.on("delete", (o) => seen.push(`delete ${o.metadata.name}`));
    await informer.start();
    await new Promise<void>((resolve) => informer.on("sync", resolve));
    expect(seen).toEqual(["add a", "add b", "update b", "add c", "delete a"]);
    expect(informer.list().map((o) => o.metadata.name)).toEqual(["b", "c"]);
    expect(informer.get("default", "c")?.kind).toBe("Service");
  });
});
