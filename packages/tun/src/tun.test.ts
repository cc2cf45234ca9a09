import { execFile, execFileSync, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWith } from "../../../test/support/prereq.ts";
import { configureInterface } from "./configure.ts";
import { openTun, type TunDevice } from "./tun.ts";

function checksum(buf: Buffer, start: number, end: number): number {
  let sum = 0;
  for (let i = start; i < end; i += 2) sum += (buf[i] << 8) | (i + 1 < end ? buf[i + 1] : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Turn an ICMP echo request into its reply, in place, as a remote host would. */
function echoReply(pkt: Buffer): Buffer | undefined {
  const ihl = (pkt[0] & 0x0f) * 4;
  if (pkt[0] >> 4 !== 4 || pkt[9] !== 1 || pkt[ihl] !== 8) return undefined;
  const reply = Buffer.from(pkt);
  reply.copy(reply, 12, 16, 20);
  pkt.copy(reply, 16, 12, 16);
  reply[ihl] = 0;
  reply.writeUInt16BE(0, ihl + 2);
  reply.writeUInt16BE(checksum(reply, ihl, reply.length), ihl + 2);
  reply.writeUInt16BE(0, 10);
  reply.writeUInt16BE(checksum(reply, 0, ihl), 10);
  return reply;
}

describeWith({ root: true, tun: true, tools: ["ip", "ping"] }, "TUN devices", () => {
  const ns = `klabt-tun-${randomBytes(3).toString("hex")}`;
  const devices: TunDevice[] = [];

  beforeAll(() => {
    execFileSync("ip", ["netns", "add", ns]);
  });
  afterAll(async () => {
    await Promise.all(devices.map((d) => d.close()));
    spawnSync("ip", ["netns", "del", ns]);
  });

  it("creates eth0 inside a namespace and carries ping both ways in batches", async () => {
    const tun = openTun("eth0", { netns: `/run/netns/${ns}` });
    devices.push(tun);
    expect(tun.name).toBe("eth0");
    await configureInterface({ netns: ns, name: "eth0", cidr: "10.251.7.2/24", mtu: 1450 });
    expect(execFileSync("ip", ["-n", ns, "-o", "addr", "show", "eth0"]).toString()).toContain(
      "10.251.7.2/24",
    );
    let batches = 0;
    tun.onPackets((packets) => {
      batches++;
      const replies = packets.map(echoReply).filter((p): p is Buffer => p !== undefined);
      tun.write(replies);
    });
    // Asynchronously: the replies are written from this process's event loop.
    const out = await promisify(execFile)("ip", [
      "netns",
      "exec",
      ns,
      "ping",
      "-c",
      "3",
      "-i",
      "0.2",
      "-W",
      "2",
      "10.251.7.9",
    ]);
    expect(out.stdout).toContain("3 received");
    expect(batches).toBeGreaterThan(0);
  });

  it("re-attaches to a persistent device after the descriptor is closed", async () => {
    const first = openTun("klabp0", { netns: `/run/netns/${ns}`, persist: true });
    await configureInterface({ netns: ns, name: "klabp0", cidr: "10.251.8.2/24" });
    await first.close();
    expect(execFileSync("ip", ["-n", ns, "-o", "addr", "show", "klabp0"]).toString()).toContain(
      "10.251.8.2/24",
    );
    const again = openTun("klabp0", { netns: `/run/netns/${ns}` });
    devices.push(again);
    expect(again.name).toBe("klabp0");
    expect(again.write([Buffer.alloc(20)])).toBeGreaterThanOrEqual(0);
  });

  it("rejects bad names and a missing namespace with clear errors", () => {
    expect(() => openTun("a/b")).toThrow(/invalid interface name/);
    expect(() => openTun("x".repeat(16))).toThrow(/invalid interface name/);
    expect(() => openTun("eth0", { netns: "/run/netns/klabt-does-not-exist" })).toThrow(
      /open netns.*No such file/,
    );
  });

  it("writes nothing once closed and closes twice without error", async () => {
    const tun = openTun("klabc0", { netns: `/run/netns/${ns}` });
    tun.onPackets(() => {});
    await tun.close();
    await tun.close();
    expect(tun.write([Buffer.alloc(20)])).toBe(0);
    expect(spawnSync("ip", ["-n", ns, "link", "show", "klabc0"]).status).not.toBe(0);
  });
});
