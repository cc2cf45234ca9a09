import { mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Conntrack } from "./conntrack.ts";
import { conntrackRequest, conntrackSocketPath, listenConntrack } from "./conntrack-socket.ts";
import { parseIP } from "./ip.ts";
import { IPPROTO_TCP, IPPROTO_UDP, TCP_ACK, TCP_SYN } from "./packet.ts";

describe("conntrack socket", () => {
  let now = 0;
  const ct = new Conntrack({ now: () => now });
  let dir: string;
  let server: Server;
  let sock: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "klab-ct-"));
    sock = conntrackSocketPath(dir);
    server = await listenConntrack(ct, sock);
    const tcp = ct.create(
      {
        proto: IPPROTO_TCP,
        src: parseIP("10.244.1.5"),
        srcPort: 40000,
        dst: parseIP("10.96.0.20"),
        dstPort: 80,
      },
      {
        proto: IPPROTO_TCP,
        src: parseIP("10.244.2.7"),
        srcPort: 8080,
        dst: parseIP("10.244.1.5"),
        dstPort: 40000,
      },
      { source: "pod", tcpFlags: TCP_SYN },
    )!;
    ct.update(tcp, 1, 60, TCP_SYN | TCP_ACK);
    ct.update(tcp, 0, 52, TCP_ACK);
    ct.create(
      {
        proto: IPPROTO_UDP,
        src: parseIP("10.244.1.5"),
        srcPort: 5353,
        dst: parseIP("10.96.0.10"),
        dstPort: 53,
      },
      {
        proto: IPPROTO_UDP,
        src: parseIP("10.244.2.3"),
        srcPort: 53,
        dst: parseIP("10.244.1.5"),
        dstPort: 5353,
      },
      { source: "pod" },
    );
  });

  afterAll(async () => {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it("lists entries as conntrack -L prints them, filtered by protocol and destination", async () => {
    const all = await conntrackRequest(sock, { op: "list" });
    expect(all).toEqual({
      ok: true,
      count: 2,
      lines: [
        "tcp      6 432000 ESTABLISHED src=10.244.1.5 dst=10.96.0.20 sport=40000 dport=80 src=10.244.2.7 dst=10.244.1.5 sport=8080 dport=40000 [ASSURED] mark=0 use=1",
        "udp      17 30 src=10.244.1.5 dst=10.96.0.10 sport=5353 dport=53 [UNREPLIED] src=10.244.2.3 dst=10.244.1.5 sport=53 dport=5353 mark=0 use=1",
      ],
    });
    expect(await conntrackRequest(sock, { op: "list", proto: "udp" })).toMatchObject({ count: 1 });
    expect(await conntrackRequest(sock, { op: "list", dst: "10.96.0.20" })).toMatchObject({ count: 1 });
    expect(await conntrackRequest(sock, { op: "count" })).toEqual({ ok: true, count: 2, max: 262144 });
  });

  it("refuses bad filters and requests with a clear error", async () => {
    expect(await conntrackRequest(sock, { op: "list", proto: "sctp" })).toEqual({
      ok: false,
      error: 'protocol "sctp" is not tracked here: use tcp, udp or icmp',
    });
    expect(await conntrackRequest(sock, { op: "list", dst: "10.96.0" })).toMatchObject({ ok: false });
    expect(await conntrackRequest(sock, { op: "nope" } as never)).toEqual({
      ok: false,
      error: 'unknown op "nope"',
    });
  });

  it("deletes what a filter matches, then flushes the rest", async () => {
    expect(await conntrackRequest(sock, { op: "flush", proto: "udp" })).toEqual({ ok: true, count: 1 });
    expect(ct.size).toBe(1);
    expect(await conntrackRequest(sock, { op: "flush" })).toEqual({ ok: true, count: 1 });
    expect(ct.size).toBe(0);
  });
});
