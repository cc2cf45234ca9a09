import { createSocket } from "node:dgram";
import { connect } from "node:net";
import { randomBytes } from "node:crypto";
import dnsPacket from "dns-packet";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWith } from "../support/prereq.ts";
import { startDns, records, status, type Harness } from "../../services/dns/src/testing/harness.ts";

const bigHosts = Array.from(
  { length: 80 },
  (_, i) => `        10.50.${Math.floor(i / 250)}.${(i % 250) + 1} big.test`,
).join("\n");

/** Sends datagrams as fast as the socket takes them; collects what comes back. */
async function blast(port: number, packets: Buffer[]): Promise<Buffer[]> {
  const sock = createSocket("udp4");
  const replies: Buffer[] = [];
  sock.on("message", (m) => replies.push(m));
  await new Promise<void>((r) => sock.bind(0, "127.0.0.1", r));
  for (let i = 0; i < packets.length; i++) {
    await new Promise<void>((r) => sock.send(packets[i]!, port, "127.0.0.1", () => r()));
    // Let the server drain now and then so the loopback queue does not overflow.
    if (i % 200 === 0) await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setTimeout(r, 300));
  sock.close();
  return replies;
}

function validQuery(id: number, name = "web.default.svc.cluster.local"): Buffer {
  return dnsPacket.encode({ id, type: "query", flags: 0x100, questions: [{ name, type: "A", class: "IN" }] });
}

/** Valid queries with random bytes flipped, truncated, extended, or pure noise. */
function fuzzPacket(i: number): Buffer {
  const kind = i % 5;
  if (kind === 0) return randomBytes(1 + (i % 600));
  const q = Buffer.from(validQuery(i & 0xffff, i % 2 ? "web.default.svc.cluster.local" : "x.y"));
  if (kind === 1) {
    for (let k = 0; k < 1 + (i % 6); k++)
      q[Math.floor(Math.random() * q.length)] = Math.floor(Math.random() * 256);
    return q;
  }
  if (kind === 2) return q.subarray(0, Math.floor(Math.random() * q.length));
  if (kind === 3) {
    // Header counts that lie about the sections.
    q.writeUInt16BE(Math.floor(Math.random() * 65536), 4 + 2 * Math.floor(Math.random() * 4));
    return q;
  }
  // Compression pointer loops and labels pointing past the end.
  const h = Buffer.alloc(12);
  h.writeUInt16BE(i & 0xffff, 0);
  h.writeUInt16BE(1, 4);
  return Buffer.concat([h, Buffer.from([0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01])]);
}

describeWith({ tools: ["dig"] }, "DNS transport: malformed input, truncation, TCP", () => {
  let dns: Harness;
  beforeAll(async () => {
    dns = await startDns(`.:0 {
    bind 127.0.0.1
    errors
    hosts {
${bigHosts}
        fallthrough
    }
    kubernetes cluster.local in-addr.arpa ip6.arpa
}
`);
  });
  afterAll(async () => {
    await dns?.stop();
  });

  it("a malformed query with a readable header gets FORMERR with the same id", async () => {
    const q = Buffer.from(validQuery(0x1234));
    const bad = Buffer.concat([q.subarray(0, 12), Buffer.from([0x3f, 0x61])]);
    const [reply] = await blast(dns.port, [bad]);
    expect(reply).toBeDefined();
    const decoded = dnsPacket.decode(reply!);
    expect(decoded.id).toBe(0x1234);
    expect((decoded.flags ?? 0) & 0xf).toBe(1); // FORMERR
  });

  it("shorter than a header, or a response, is dropped without a reply", async () => {
    const resp = Buffer.from(validQuery(7));
    resp.writeUInt16BE(resp.readUInt16BE(2) | 0x8000, 2);
    expect(await blast(dns.port, [Buffer.from([1, 2, 3]), resp])).toEqual([]);
  });

  it("a reply too large for UDP sets TC and dig retries over TCP", async () => {
    const out = await dns.dig("big.test", "A", "+noedns");
    expect(out).toContain(";; Truncated, retrying in TCP mode.");
    expect(status(out)).toBe("NOERROR");
    const answers = /;; ANSWER SECTION:\n([\s\S]*?)\n\n/.exec(out)![1]!.split("\n");
    expect(answers).toHaveLength(80);
  });

  it("an EDNS version other than 0 gets BADVERS", async () => {
    const out = await dns.dig("web.default.svc.cluster.local", "+edns=1", "+noednsneg");
    expect(status(out)).toBe("BADVERS");
  });

  it("EDNS0 raises the UDP limit: the same answer fits in a 4096-byte buffer", async () => {
    const out = await dns.dig("big.test", "A", "+bufsize=4096");
    expect(out).not.toContain("Truncated");
    expect(out).toContain("udp: 4096");
    expect(out).toMatch(/ANSWER: 80,/);
  });

  it("100,000 malformed or random UDP packets: no crash, still answering", async () => {
    const packets = Array.from({ length: 100_000 }, (_, i) => fuzzPacket(i));
    await blast(dns.port, packets);
    expect(records(await dns.dig("web.default.svc.cluster.local", "+short")).flat()).toEqual(["10.96.0.20"]);
  }, 120_000);

  it("malformed TCP streams (garbage, bad lengths, cut frames): no crash, still answering", async () => {
    const streams: Buffer[] = [];
    for (let i = 0; i < 2000; i++) {
      const body = fuzzPacket(i);
      const len = Buffer.alloc(2);
      len.writeUInt16BE(i % 7 === 0 ? 0 : i % 11 === 0 ? 65535 : body.length);
      streams.push(
        i % 13 === 0
          ? randomBytes(i % 100)
          : Buffer.concat([len, body, i % 3 === 0 ? randomBytes(5) : Buffer.alloc(0)]),
      );
    }
    let done = 0;
    await Promise.all(
      Array.from({ length: 20 }, (_, w) =>
        (async () => {
          for (let i = w; i < streams.length; i += 20) {
            await new Promise<void>((resolve) => {
              const s = connect(dns.port, "127.0.0.1", () => {
                s.end(streams[i]);
              });
              s.on("data", () => {});
              s.on("error", () => resolve());
              s.on("close", () => resolve());
              s.setTimeout(2000, () => s.destroy());
            });
            done++;
          }
        })(),
      ),
    );
    expect(done).toBe(streams.length);
    expect(records(await dns.dig("+tcp", "web.default.svc.cluster.local", "+short")).flat()).toEqual([
      "10.96.0.20",
    ]);
  }, 120_000);

  it("several queries pipelined on one TCP connection each get their reply", async () => {
    const frames = [1, 2, 3].map((id) => {
      const q = validQuery(id);
      const len = Buffer.alloc(2);
      len.writeUInt16BE(q.length);
      return Buffer.concat([len, q]);
    });
    const ids = await new Promise<number[]>((resolve, reject) => {
      const s = connect(dns.port, "127.0.0.1", () => s.write(Buffer.concat(frames)));
      let buf = Buffer.alloc(0);
      const got: number[] = [];
      s.on("data", (c) => {
        buf = Buffer.concat([buf, c]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          got.push(dnsPacket.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))).id!);
          buf = buf.subarray(2 + buf.readUInt16BE(0));
        }
        if (got.length === 3) {
          s.destroy();
          resolve(got);
        }
      });
      s.on("error", reject);
    });
    expect(ids.sort()).toEqual([1, 2, 3]);
  });
});
