/**
 * TEST FIXTURE: a tiny authoritative DNS server on 127.0.0.1 that stands in for "the internet's"
 * resolver, so forward can be tested without sending anything off the machine.
 */
import { createSocket, type Socket } from "node:dgram";
import { createServer, type Server } from "node:net";
import dnsPacket, { type Answer, type Packet } from "dns-packet";

export interface TestUpstream {
  port: number;
  /** Questions received, `NAME TYPE proto`. */
  seen: string[];
  close(): Promise<void>;
}

export type Zone = Record<string, Answer[]>;

function serveWith(answer: (buf: Buffer, proto: string) => Buffer | undefined) {
  return (udp: Socket, tcp: Server) => {
    udp.on("message", (msg, rinfo) => {
      const out = answer(msg, "udp");
      if (!out) return;
      if (out.length > 512) {
        // Classic UDP limit: the client must come back over TCP.
        const tc = Buffer.from(dnsPacket.encode({ ...dnsPacket.decode(out), answers: [] }));
        tc.writeUInt16BE(tc.readUInt16BE(2) | 0x0200, 2);
        udp.send(tc, rinfo.port, rinfo.address);
        return;
      }
      udp.send(out, rinfo.port, rinfo.address);
    });
    tcp.on("connection", (sock) => {
      let buf = Buffer.alloc(0);
      sock.on("error", () => sock.destroy());
      sock.on("data", (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const len = buf.readUInt16BE(0);
          const out = answer(buf.subarray(2, 2 + len), "tcp");
          buf = buf.subarray(2 + len);
          if (out) {
            const h = Buffer.alloc(2);
            h.writeUInt16BE(out.length);
            sock.write(Buffer.concat([h, out]));
          }
        }
      });
    });
  };
}

export async function startUpstream(zone: Zone, options: { silent?: boolean } = {}): Promise<TestUpstream> {
  const seen: string[] = [];
  const answer = (buf: Buffer, proto: string): Buffer | undefined => {
    let q: Packet;
    try {
      q = dnsPacket.decode(buf);
    } catch {
      return undefined;
    }
    const question = q.questions?.[0];
    if (!question) return undefined;
    seen.push(`${question.name.toLowerCase()} ${question.type} ${proto}`);
    if (options.silent) return undefined;
    const key = `${question.name.toLowerCase()} ${question.type}`;
    const records = zone[key];
    const exists = Object.keys(zone).some((k) => k.startsWith(`${question.name.toLowerCase()} `));
    const rcode = records || exists ? 0 : 3;
    return dnsPacket.encode({
      id: q.id,
      type: "response",
      flags: 0x0100 | 0x0080 | rcode,
      questions: [question],
      answers: records ?? [],
      authorities: records
        ? []
        : [
            {
              name: "example.com",
              type: "SOA",
              ttl: 60,
              data: {
                mname: "ns.example.com",
                rname: "hostmaster.example.com",
                serial: 1,
                refresh: 3600,
                retry: 600,
                expire: 86400,
                minimum: 60,
              },
            },
          ],
    });
  };
  const serve = serveWith(answer);
  // The UDP port the kernel picks may be taken for TCP by someone else: pick again.
  for (let attempt = 0; ; attempt++) {
    const udp: Socket = createSocket("udp4");
    await new Promise<void>((r) => udp.bind(0, "127.0.0.1", r));
    const port = udp.address().port;
    const tcp: Server = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once("error", () => resolve(false));
      tcp.listen(port, "127.0.0.1", () => resolve(true));
    });
    if (!ok) {
      udp.close();
      if (attempt < 20) continue;
      throw new Error("no free port for the test upstream");
    }
    serve(udp, tcp);
    let closing: Promise<void> | undefined;
    return {
      port,
      seen,
      close: () => {
        closing ??= new Promise<void>((resolve) => {
          udp.close();
          tcp.close(() => resolve());
        });
        return closing;
      },
    };
  }
}

/** The emulated internet's names used by the tests. */
export function internetZone(): Zone {
  const a = (name: string, ip: string): Answer => ({ name, type: "A", ttl: 300, class: "IN", data: ip });
  const many: Answer[] = Array.from({ length: 60 }, (_, i) => a("big.example.com", `203.0.113.${i + 1}`));
  return {
    "www.example.com A": [a("www.example.com", "203.0.113.80")],
    "api.example.com A": [a("api.example.com", "203.0.113.10")],
    "big.example.com A": many,
    "api.example.com TXT": [{ name: "api.example.com", type: "TXT", ttl: 300, class: "IN", data: "v=1" }],
  };
}
