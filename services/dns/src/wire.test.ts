/**
 * The fast paths of the UDP hot loop give what the slow paths give: the direct query decoder
 * against dns-packet, and reused reply encodings (cache hits, remembered kubernetes answers)
 * against fresh ones, including after the cluster changes and with loadbalance shuffling.
 */
import { createSocket } from "node:dgram";
import dnsPacket, { type Packet } from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeQuery } from "./transport.ts";
import { findVariant, type ReplyVariant } from "./message.ts";
import { startDns, type Harness } from "./testing/harness.ts";
import { sampleCluster, service } from "./testing/cluster-fixture.ts";

function query(
  name: string,
  id: number,
  opts: { type?: string; edns?: boolean; cookie?: boolean } = {},
): Buffer {
  const additionals = opts.edns
    ? [
        {
          type: "OPT",
          name: ".",
          udpPayloadSize: 1232,
          flags: 0,
          options: opts.cookie ? [{ code: 10, data: Buffer.from("0123456789abcdef", "hex") }] : [],
        },
      ]
    : [];
  return dnsPacket.encode({
    id,
    type: "query",
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: (opts.type ?? "A") as "A", class: "IN" }],
    additionals,
  } as unknown as Packet);
}

describe("the direct query decoder", () => {
  const cases: [string, Buffer][] = [
    ["plain", query("web.default.svc.cluster.local", 7)],
    ["mixed case", query("WeB.Default.SVC.cluster.local", 8, { type: "AAAA" })],
    ["EDNS0", query("web.default.svc.cluster.local", 9, { edns: true })],
    ["EDNS0 cookie", query("web.default.svc.cluster.local", 10, { edns: true, cookie: true })],
    ["root", query(".", 11, { type: "NS" })],
    ["underscores", query("_http._tcp.web.default.svc.cluster.local", 12, { type: "SRV" })],
    ["unknown type", query("x.cluster.local", 13, { type: "TYPE65280" })],
  ];
  for (const [what, buf] of cases)
    it(`reads a ${what} query as dns-packet does`, () => {
      const r = decodeQuery(buf);
      expect(r.ok).toBe(true);
      const ours = r.ok ? r.query.msg : undefined;
      const theirs = dnsPacket.decode(buf);
      expect(ours!.id).toBe(theirs.id);
      expect(ours!.flags).toBe(theirs.flags);
      expect(ours!.questions).toEqual(theirs.questions);
      expect(ours!.additionals).toEqual(theirs.additionals);
    });

  it("leaves escaped labels and compression to dns-packet", () => {
    // a label holding a dot, and a question name that is a compression pointer
    const dotted = Buffer.from(query("ab.cluster.local", 1));
    dotted[13 + 1] = 0x2e; // "a.": the first label's second byte becomes a dot
    expect(decodeQuery(dotted)).toMatchObject({ ok: true });
    const pointer = Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1]);
    expect(decodeQuery(pointer)).toMatchObject({ ok: false });
    const short = Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0x61]);
    expect(decodeQuery(short)).toMatchObject({ ok: false });
  });
});

describe("finding the reply made for a query", () => {
  const variant = (q: Buffer, proto: "udp" | "tcp"): ReplyVariant => ({
    proto,
    query: Buffer.from(q.subarray(2)),
    flags: 0,
    name: "",
    type: "A",
    buf: Buffer.alloc(0),
  });
  it("matches the bytes after the id on the same transport only", () => {
    const plain = query("web.default.svc.cluster.local", 1);
    const replies = [
      variant(plain, "tcp"),
      variant(query("web.default.svc.cluster.local", 2, { edns: true }), "udp"),
    ];
    expect(findVariant(replies, query("web.default.svc.cluster.local", 9), "udp")).toBe(-1);
    replies.push(variant(plain, "udp"));
    expect(findVariant(replies, query("web.default.svc.cluster.local", 9), "udp")).toBe(2);
    expect(findVariant(replies, query("web.default.svc.cluster.local", 9, { edns: true }), "udp")).toBe(1);
    expect(findVariant(replies, query("WEB.default.svc.cluster.local", 9), "udp")).toBe(-1);
    expect(findVariant(replies, query("web.default.svc.cluster.loca", 9), "udp")).toBe(-1);
  });
});

describe("reused reply encodings", () => {
  let cached: Harness;
  let direct: Harness;
  const sock = createSocket("udp4");

  beforeAll(async () => {
    cached = await startDns(`.:0 {\n bind 127.0.0.1\n cache 30\n kubernetes cluster.local\n}`);
    direct = await startDns(`.:0 {\n bind 127.0.0.1\n loadbalance\n kubernetes cluster.local\n}`);
    await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
  });
  afterAll(async () => {
    sock.close();
    await cached?.stop();
    await direct?.stop();
  });

  const ask = (port: number, buf: Buffer): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const id = buf.readUInt16BE(0);
      const timer = setTimeout(() => reject(new Error("no reply")), 5000);
      const on = (msg: Buffer) => {
        if (msg.readUInt16BE(0) !== id) return;
        clearTimeout(timer);
        sock.off("message", on);
        resolve(msg);
      };
      sock.on("message", on);
      sock.send(buf, port, "127.0.0.1");
    });

  it("answers a repeated question with the bytes a fresh encoding gives, under the new id", async () => {
    for (const h of [cached, direct]) {
      const first = await ask(h.port, query("web.default.svc.cluster.local", 100, { edns: true }));
      const second = await ask(h.port, query("web.default.svc.cluster.local", 101, { edns: true }));
      const third = await ask(h.port, query("web.default.svc.cluster.local", 102, { edns: true }));
      expect(second.readUInt16BE(0)).toBe(101);
      expect(third.readUInt16BE(0)).toBe(102);
      const d = dnsPacket.decode(third);
      expect(d.answers).toEqual([expect.objectContaining({ type: "A", data: "10.96.0.20" })]);
      // byte for byte what dns-packet encodes for the decoded reply
      expect(dnsPacket.encode(d).equals(third)).toBe(true);
      expect(third.subarray(2).equals(second.subarray(2)) || h === cached).toBe(true);
      expect(first.length).toBe(third.length);
    }
  });

  it("echoes each query's own question (case, EDNS0) rather than a neighbour's", async () => {
    for (const h of [cached, direct]) {
      await ask(h.port, query("web.default.svc.cluster.local", 200));
      const upper = dnsPacket.decode(await ask(h.port, query("WEB.default.svc.cluster.local", 201)));
      expect(upper.questions![0]!.name).toBe("WEB.default.svc.cluster.local");
      const plain = dnsPacket.decode(await ask(h.port, query("web.default.svc.cluster.local", 202)));
      expect(plain.additionals).toEqual([]);
      const edns = dnsPacket.decode(
        await ask(h.port, query("web.default.svc.cluster.local", 203, { edns: true })),
      );
      expect(edns.additionals).toEqual([expect.objectContaining({ type: "OPT" })]);
      const nodata = dnsPacket.decode(
        await ask(h.port, query("web.default.svc.cluster.local", 204, { type: "AAAA" })),
      );
      expect(nodata.answers).toEqual([]);
      expect(nodata.authorities).toEqual([expect.objectContaining({ type: "SOA" })]);
    }
  });

  it("follows a change of the cluster at once when answering from the kubernetes plugin", async () => {
    const ipOf = async (id: number) =>
      (
        dnsPacket.decode(await ask(direct.port, query("web.default.svc.cluster.local", id))).answers![0] as {
          data: string;
        }
      ).data;
    expect(await ipOf(300)).toBe("10.96.0.20");
    const state = sampleCluster();
    state.services = state.services.map((s) =>
      s.metadata.name === "web" && s.metadata.namespace === "default"
        ? service("default", "web", { clusterIP: "10.96.0.99", clusterIPs: ["10.96.0.99"] })
        : s,
    );
    direct.source.replace(state);
    expect(await ipOf(301)).toBe("10.96.0.99");
    direct.source.replace(sampleCluster());
    expect(await ipOf(302)).toBe("10.96.0.20");
  });

  it("still shuffles the addresses of remembered answers (loadbalance)", async () => {
    const orders = new Set<string>();
    for (let i = 0; i < 40 && orders.size < 2; i++) {
      const d = dnsPacket.decode(
        await ask(direct.port, query("headless.default.svc.cluster.local", 400 + i)),
      );
      expect(d.answers!.length).toBeGreaterThan(1);
      orders.add(d.answers!.map((a) => (a as { data: string }).data).join(","));
    }
    expect(orders.size).toBe(2);
  });
});
