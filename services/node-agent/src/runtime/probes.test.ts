import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { createServer as createTCPServer, type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Container, Probe } from "@klab/api";
import { hasTool } from "../../../../test/support/prereq.ts";
import { runProbe, type ProbeTarget } from "./probes.ts";

// Everything on loopback: the "pod" is this host, its IP 127.0.0.1.
let server: Server;
let port = 0;
let closedPort = 0;
const seen: IncomingHttpHeaders[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(req.headers);
    if (req.url === "/hang") return; // never answers
    res.statusCode = req.url === "/fail" ? 500 : req.url === "/moved" ? 302 : 200;
    res.end("ok");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as AddressInfo).port;
  const s = createTCPServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  closedPort = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

const target = (dialFromNode: boolean, container: Partial<Container> = {}): ProbeTarget => ({
  podIP: "127.0.0.1",
  enter: [],
  env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
  container: { name: "app", image: "busybox", ports: [{ name: "http", containerPort: port }], ...container },
  dialFromNode,
});
const http = (path: string, p: number | string = port, extra: Partial<Probe["httpGet"]> = {}): Probe => ({
  httpGet: { path, port: p, ...extra },
  timeoutSeconds: 1,
});

describe("httpGet and tcpSocket probes dialled from the agent", () => {
  it("passes on 2xx and 3xx (no redirect followed) and fails on 5xx with kubelet's message", async () => {
    expect(await runProbe(http("/"), target(true))).toEqual({ ok: true });
    expect(await runProbe(http("/moved", "http"), target(true))).toEqual({ ok: true });
    expect(await runProbe(http("/fail"), target(true))).toEqual({
      ok: false,
      output: "HTTP probe failed with statuscode: 500",
    });
  });

  it("sends kubelet's User-Agent and the probe's own headers", async () => {
    seen.length = 0;
    await runProbe(http("/", port, { httpHeaders: [{ name: "X-Probe", value: "1" }] }), target(true));
    expect(seen[0]).toMatchObject({ "user-agent": "kube-probe/1.32", accept: "*/*", "x-probe": "1" });
    seen.length = 0;
    await runProbe(
      http("/", port, {
        httpHeaders: [
          { name: "host", value: "example.test" },
          { name: "user-agent", value: "mine" },
        ],
      }),
      target(true),
    );
    expect(seen[0]).toMatchObject({ host: "example.test", "user-agent": "mine" });
  });

  it("reports a refused connection, a timeout and a bad header as kubelet does, and goes on", async () => {
    expect(await runProbe(http("/", closedPort), target(true))).toEqual({
      ok: false,
      output: `Get "http://127.0.0.1:${closedPort}/": dial tcp 127.0.0.1:${closedPort}: connect: connection refused`,
    });
    expect(await runProbe(http("/hang"), target(true))).toEqual({
      ok: false,
      output: `Get "http://127.0.0.1:${port}/hang": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`,
    });
    const bad = await runProbe(
      http("/", port, { httpHeaders: [{ name: "bad header", value: "x" }] }),
      target(true),
    );
    expect(bad.ok).toBe(false);
    expect(await runProbe(http("/", "nope"), target(true))).toEqual({
      ok: false,
      output: 'unknown port "nope"',
    });
  });

  it("opens and closes a TCP connection for tcpSocket", async () => {
    expect(await runProbe({ tcpSocket: { port } }, target(true))).toEqual({ ok: true });
    expect(await runProbe({ tcpSocket: { port: closedPort } }, target(true))).toEqual({
      ok: false,
      output: `dial tcp 127.0.0.1:${closedPort}: connect: connection refused`,
    });
  });

  it.skipIf(!hasTool("curl") || !hasTool("bash"))(
    "gives the same results as the probes run by a process in the pod",
    async () => {
      const probes: Probe[] = [
        http("/"),
        http("/fail"),
        http("/", closedPort),
        { tcpSocket: { port } },
        { tcpSocket: { port: closedPort } },
      ];
      for (const p of probes)
        expect(await runProbe(p, target(true))).toEqual(await runProbe(p, target(false)));
    },
  );
});
