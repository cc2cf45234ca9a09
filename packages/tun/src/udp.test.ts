import { expect, it, describe } from "vitest";
import { UdpSocket } from "./udp.ts";

const LOOPBACK = 0x7f000001;

describe("native UDP socket", () => {
  it("sends batches to each destination and receives them with the sender's address", async () => {
    const a = new UdpSocket("127.0.0.1", 0);
    const b = new UdpSocket("127.0.0.1", 0);
    try {
      expect(b.port).toBeGreaterThan(0);
      const got: string[] = [];
      const from: number[] = [];
      const done = new Promise<void>((resolve) => {
        b.onDatagrams((datagrams, peers) => {
          datagrams.forEach((d, i) => {
            got.push(d.toString());
            from.push(peers[i]);
          });
          if (got.length === 100) resolve();
        });
      });
      const batch = Array.from({ length: 100 }, (_, i) => Buffer.from(`datagram ${i}`));
      expect(a.sendTo(batch, new Uint32Array(100).fill(LOOPBACK), b.port)).toBe(100);
      await done;
      expect(got).toEqual(batch.map(String));
      expect(new Set(from)).toEqual(new Set([LOOPBACK]));
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("refuses bad arguments with clear errors", async () => {
    expect(() => new UdpSocket("not-an-ip", 1)).toThrow(/invalid address/);
    expect(() => new UdpSocket("127.0.0.1", 70000)).toThrow(/invalid UDP port/);
    const s = new UdpSocket("127.0.0.1", 0);
    expect(() => new UdpSocket("127.0.0.1", s.port)).toThrow(/bind .*Address already in use/);
    expect(() => s.sendTo([Buffer.from("x")], new Uint32Array(0), 9)).toThrow(/one destination per datagram/);
    await s.close();
    expect(s.sendTo([Buffer.from("x")], new Uint32Array(1), 9)).toBe(0);
  });
});
