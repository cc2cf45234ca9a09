import { mkdtempSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Server } from "node:net";
import { KUBE_PROXY_JUMPS, KUBE_PROXY_RULES } from "./iptables/fixtures.ts";
import { natRequest, natSocketPath, startNatLoader } from "./loader.ts";
import { ServiceNat } from "./service-nat.ts";
import { syntheticPacket } from "./iptables-stage.ts";
import type { StageContext } from "../stages.ts";

let dir: string;
let socket: string;
let server: Server;
const nat = new ServiceNat({ random: () => 0.1 });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "klab-nat-"));
  socket = natSocketPath(join(dir, "nodes", "node-1"));
  server = await startNatLoader(nat, socket);
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const ctx = (src: string, dst: string, dport: number): StageContext => ({
  flow: { protocol: "TCP", srcIP: src, srcPort: 40000, dstIP: dst, dstPort: dport },
  source: "pod",
  nodeName: "node-1",
  nodeIP: "172.29.0.3",
  isLocalPod: () => false,
  isLocalAddress: (ip) => ip === "172.29.0.3",
  now: 0,
});
const decide = (dst: string, dport: number) =>
  nat.onNewConnection(syntheticPacket("TCP", "10.244.1.9", 40000, dst, dport), ctx("10.244.1.9", dst, dport));

describe("the dataplane's NAT loader socket", () => {
  it("loads kube-proxy's rules in one step and prints them back as iptables-save", async () => {
    expect(
      await natRequest(socket, {
        op: "load",
        mode: "iptables",
        iptablesRestore: KUBE_PROXY_JUMPS + KUBE_PROXY_RULES,
      }),
    ).toEqual({
      ok: true,
      generation: 1,
    });
    expect(decide("10.96.100.10", 80)).toMatchObject({
      action: "DNAT",
      toIP: "10.244.1.5",
      toPort: 8080,
      rule: "KUBE-SEP-AFGSLHOD2HFNCBX4",
    });
    const saved = await natRequest(socket, { op: "iptables-save", table: "nat", counters: true });
    expect(saved.ok && saved.text).toMatch(/^\[1:60\] -A KUBE-SEP-AFGSLHOD2HFNCBX4 -p tcp/m);
    const status = await natRequest(socket, { op: "status" });
    expect(status).toMatchObject({ ok: true, mode: "iptables", loads: 1 });
  });

  it("refuses a bad ruleset with its line number and keeps serving the old one", async () => {
    const res = await natRequest(socket, {
      op: "load",
      mode: "iptables",
      iptablesRestore: "*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -j NOWHERE\nCOMMIT\n",
    });
    expect(res).toMatchObject({ ok: false });
    expect(!res.ok && res.error).toMatch(/NOWHERE/);
    expect(decide("10.96.100.10", 80)).toMatchObject({ action: "DNAT" });
  });

  it("switches to ipvs mode and lists the table as ipvsadm -Ln", async () => {
    const res = await natRequest(socket, {
      op: "load",
      mode: "ipvs",
      ipvs: [
        {
          protocol: "TCP",
          address: "10.96.100.10",
          port: 80,
          scheduler: "rr",
          kind: "ClusterIP",
          realServers: [{ address: "10.244.2.7", port: 8080, weight: 1 }],
        },
      ],
      ipvsAddresses: ["10.96.100.10"],
    });
    expect(res).toEqual({ ok: true, generation: 2 });
    expect(nat.holdsAddress("10.96.100.10")).toBe(true);
    expect(decide("10.96.100.10", 80)).toMatchObject({ action: "DNAT", toIP: "10.244.2.7" });
    const list = await natRequest(socket, { op: "ipvsadm" });
    expect(list.ok && list.text).toContain("TCP  10.96.100.10:80 rr\n  -> 10.244.2.7:8080");
  });

  it("answers garbage with an error line instead of dropping the connection", async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const s = createConnection(socket, () => s.write("this is not json\n"));
      s.on("data", (d) => {
        resolve(d.toString());
        s.end();
      });
      s.on("error", reject);
    });
    expect(JSON.parse(answer)).toEqual({ ok: false, error: "request is not valid JSON" });
    expect(await natRequest(socket, { op: "nope" } as never)).toMatchObject({
      ok: false,
      error: expect.stringMatching(/unknown op/),
    });
    expect(await natRequest(socket, { op: "load", mode: "nftables" } as never)).toMatchObject({ ok: false });
    expect(await natRequest(socket, { op: "iptables-save", table: "mangle" })).toMatchObject({ ok: false });
  });

  it("tells the user what to check when nothing listens", async () => {
    await expect(natRequest(join(dir, "missing.sock"), { op: "status" })).rejects.toThrow(
      /no node dataplane is listening/,
    );
  });
});
