import { createServer, connect, type Server } from "node:net";
import { createSocket } from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { ServiceNat, syntheticPacket } from "@klab/dataplane/nat/index.ts";
import { buildServicePorts } from "./service-ports.ts";
import { buildUserspaceRules, USERSPACE_JUMP_RULES, UserspaceProxier } from "./userspace.ts";
import { ep, service, slice, tcp } from "./test-fixtures.ts";

// The userspace proxy carries real TCP and UDP on loopback: three backends that answer with
// their own name, a Service in front of them, and clients that connect to the proxy's port.

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function backend(name: string): Promise<number> {
  const server: Server = createServer((s) => {
    s.end(`${name}\n`);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as { port: number }).port;
}

function fetchName(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = "";
    const s = connect(port, "127.0.0.1");
    s.on("data", (d) => (data += d));
    s.on("end", () => resolve(data.trim()));
    s.on("error", reject);
  });
}

describe("userspace proxy mode", () => {
  it("accepts on a real socket and round-robins TCP connections over the endpoints", async () => {
    // Three backends on 127.0.0.1 with distinct ports; the EndpointSlice names each port.
    const ports = [await backend("a"), await backend("b"), await backend("c")];
    const svc = service("default", "web", { clusterIP: "10.96.100.10", ports: [tcp("http", 80)] });
    const slices = ports.map((port, i) =>
      slice("default", "web", [{ name: "http", port }], [ep("127.0.0.1", "node-1")], `s${i}`),
    );
    const proxier = new UserspaceProxier("127.0.0.1");
    cleanups.push(() => proxier.close());
    const [portal] = await proxier.sync(buildServicePorts([svc], slices, { name: "node-1", ips: [] }));
    expect(portal.proxyPort).toBeGreaterThan(0);
    const got: string[] = [];
    for (let i = 0; i < 6; i++) got.push(await fetchName(portal.proxyPort));
    // Each endpoint once per round, in the same order every round.
    expect(new Set(got.slice(0, 3))).toEqual(new Set(["a", "b", "c"]));
    expect(got.slice(3)).toEqual(got.slice(0, 3));
  });

  it("skips an endpoint that refuses and closes when none answers", async () => {
    const good = await backend("up");
    const dead = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const svc = service("default", "web", { clusterIP: "10.96.100.10", ports: [tcp("http", 80)] });
    const eps = [
      slice("default", "web", [{ name: "http", port: dead }], [ep("127.0.0.1")], "d"),
      slice("default", "web", [{ name: "http", port: good }], [ep("127.0.0.1")], "g"),
    ];
    const proxier = new UserspaceProxier("127.0.0.1");
    cleanups.push(() => proxier.close());
    const [portal] = await proxier.sync(buildServicePorts([svc], eps, { name: "node-1", ips: [] }));
    for (let i = 0; i < 3; i++) expect(await fetchName(portal.proxyPort)).toBe("up");
    await proxier.sync(buildServicePorts([svc], [eps[0]], { name: "node-1", ips: [] }));
    await expect(fetchName(portal.proxyPort)).resolves.toBe("");
  });

  it("relays UDP datagrams and their replies", async () => {
    const echo = createSocket("udp4");
    echo.on("message", (m, r) => echo.send(Buffer.concat([Buffer.from("echo:"), m]), r.port, r.address));
    await new Promise<void>((r) => echo.bind(0, "127.0.0.1", r));
    cleanups.push(() => new Promise<void>((r) => echo.close(() => r())));
    const svc = service("kube-system", "kube-dns", {
      clusterIP: "10.96.0.10",
      ports: [{ name: "dns", port: 53, protocol: "UDP" }],
    });
    const eps = slice(
      "kube-system",
      "kube-dns",
      [{ name: "dns", port: echo.address().port, protocol: "UDP" }],
      [ep("127.0.0.1")],
    );
    const proxier = new UserspaceProxier("127.0.0.1");
    cleanups.push(() => proxier.close());
    const [portal] = await proxier.sync(buildServicePorts([svc], [eps], { name: "node-1", ips: [] }));
    const client = createSocket("udp4");
    cleanups.push(() => new Promise<void>((r) => client.close(() => r())));
    const reply = await new Promise<string>((resolve) => {
      client.on("message", (m) => resolve(m.toString()));
      client.send("hello", portal.proxyPort, "127.0.0.1");
    });
    expect(reply).toBe("echo:hello");
  });

  it("writes the redirect rules that send Service traffic to the proxy's ports", () => {
    const text = buildUserspaceRules(
      [
        {
          service: "default/web:http",
          protocol: "TCP",
          clusterIP: "10.96.100.10",
          port: 80,
          nodePort: 30080,
          externalIPs: [],
          proxyPort: 40123,
        },
      ],
      "172.29.0.3",
    );
    expect(text).toContain(
      '-A KUBE-PORTALS-CONTAINER -d 10.96.100.10/32 -p tcp -m comment --comment "default/web:http" -m tcp --dport 80 -j REDIRECT --to-ports 40123',
    );
    const nat = new ServiceNat();
    nat.load({ mode: "userspace", ensureRules: USERSPACE_JUMP_RULES, iptablesRestore: text });
    const ctx = {
      flow: { protocol: "TCP" as const, srcIP: "10.244.1.9", srcPort: 1, dstIP: "10.96.100.10", dstPort: 80 },
      source: "pod" as const,
      nodeName: "node-1",
      nodeIP: "172.29.0.3",
      isLocalPod: () => false,
      isLocalAddress: (ip: string) => ip === "172.29.0.3",
      now: 0,
    };
    expect(
      nat.onNewConnection(syntheticPacket("TCP", "10.244.1.9", 1, "10.96.100.10", 80), ctx),
    ).toMatchObject({
      action: "DNAT",
      toIP: "172.29.0.3",
      toPort: 40123,
    });
    expect(
      nat.onNewConnection(syntheticPacket("TCP", "10.244.1.9", 1, "172.29.0.3", 30080), {
        ...ctx,
        flow: { ...ctx.flow, dstIP: "172.29.0.3", dstPort: 30080 },
      }),
    ).toMatchObject({
      toPort: 40123,
    });
  });
});
