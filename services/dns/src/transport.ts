/**
 * Wire handling: decoding queries (FORMERR for a readable header, silence otherwise), EDNS0,
 * and fitting a UDP reply into the client's buffer with the TC bit, as CoreDNS does.
 */
import dnsPacket, { type Answer, type Packet, type RecordClass, type RecordType } from "dns-packet";
import { createRequire } from "node:module";
import { Flag, Rcode, type Message } from "./message.ts";

// dns-packet's own number-to-name tables, so the fast path names types exactly as dns-packet does
const requireCjs = createRequire(import.meta.url);
const dnsTypes = requireCjs("dns-packet/types") as { toString(n: number): string };
const dnsClasses = requireCjs("dns-packet/classes") as { toString(n: number): string };
const decodeRecord = (dnsPacket as unknown as { answer: { decode(buf: Buffer, offset: number): Answer } })
  .answer.decode;

export interface DecodedQuery {
  msg: Packet;
  bufsize: number;
  edns: boolean;
  do: boolean;
}

export type DecodeResult = { ok: true; query: DecodedQuery } | { ok: false; reply?: Buffer };

/** A reply carrying only a header: FORMERR/NOTIMP when the question cannot be served. */
export function headerOnlyReply(buf: Buffer, rcode: number): Buffer {
  const out = Buffer.alloc(12);
  buf.copy(out, 0, 0, 2);
  const flags = buf.readUInt16BE(2);
  // QR, the query's opcode and RD; the rcode.
  out.writeUInt16BE(0x8000 | (flags & 0x7800) | (flags & Flag.RD) | rcode, 2);
  return out;
}

/** RFC 6891: an EDNS version we do not speak gets BADVERS (extended rcode 16) and our version, 0. */
function badVersion(q: Packet): Buffer {
  return dnsPacket.encode({
    id: q.id ?? 0,
    type: "response",
    flags: (q.flags ?? 0) & Flag.RD,
    questions: q.questions ?? [],
    additionals: [
      {
        type: "OPT",
        name: ".",
        udpPayloadSize: 4096,
        extendedRcode: 1,
        ednsVersion: 0,
        flags: 0,
        options: [],
      } as unknown as Answer,
    ],
  });
}

/** A query name's labels, copied in with dots between them (at most 254 bytes, as checked). */
const nameScratch = Buffer.allocUnsafe(256);

/**
 * The common query (one question of plain labels, at most an OPT record) read directly: the
 * same Packet dns-packet would give, without its per-field header object. Anything else, or
 * anything odd, returns undefined and goes through dns-packet.
 */
function decodeSimpleQuery(buf: Buffer): Packet | undefined {
  if (buf.readUInt16BE(4) !== 1 || buf.readUInt16BE(6) !== 0 || buf.readUInt16BE(8) !== 0) return undefined;
  const arcount = buf.readUInt16BE(10);
  if (arcount > 1) return undefined;
  let off = 12;
  // The labels are copied once, dots between them, and read as one string: a string per label
  // joined up cost more than the rest of the decoding.
  let n = 0;
  for (;;) {
    if (off >= buf.length) return undefined;
    const len = buf[off++]!;
    if (len === 0) break;
    // compression pointers and long names: dns-packet's checks apply
    if (len > 63 || off + len > buf.length || off - 12 + len > 254) return undefined;
    if (n > 0) nameScratch[n++] = 0x2e;
    for (let i = off; i < off + len; i++) {
      const c = buf[i]!;
      // printable ASCII except the dot; anything else keeps dns-packet's decoding
      if (c <= 0x20 || c >= 0x7f || c === 0x2e) return undefined;
      nameScratch[n++] = c;
    }
    off += len;
  }
  const name = n === 0 ? "." : nameScratch.toString("latin1", 0, n);
  if (off + 4 > buf.length) return undefined;
  const question = {
    name,
    type: dnsTypes.toString(buf.readUInt16BE(off)) as RecordType,
    class: dnsClasses.toString(buf.readUInt16BE(off + 2)) as RecordClass,
  };
  off += 4;
  const additionals: Answer[] = [];
  if (arcount === 1) additionals.push(decodeRecord(buf, off));
  return {
    id: buf.readUInt16BE(0),
    type: "query",
    flags: buf.readUInt16BE(2) & 0x7fff,
    questions: [question],
    answers: [],
    authorities: [],
    additionals,
  };
}

export function decodeQuery(buf: Buffer): DecodeResult {
  if (buf.length < 12) return { ok: false };
  // A response sent to us is never answered (it could start a reflection loop).
  if (buf[2]! & 0x80) return { ok: false };
  let msg: Packet;
  try {
    msg = decodeSimpleQuery(buf) ?? dnsPacket.decode(buf);
  } catch {
    return { ok: false, reply: headerOnlyReply(buf, Rcode.FORMERR) };
  }
  const opcode = (buf.readUInt16BE(2) >> 11) & 0xf;
  if (opcode !== 0) return { ok: false, reply: headerOnlyReply(buf, Rcode.NOTIMP) };
  if (!msg.questions || msg.questions.length !== 1)
    return { ok: false, reply: headerOnlyReply(buf, Rcode.FORMERR) };
  let bufsize = 512;
  let edns = false;
  let dnssecOK = false;
  const opts = (msg.additionals ?? []).filter((a) => a.type === "OPT");
  if (opts.length > 1) return { ok: false, reply: headerOnlyReply(buf, Rcode.FORMERR) };
  if (opts.length === 1) {
    const opt = opts[0] as unknown as { udpPayloadSize?: number; flags?: number; ednsVersion?: number };
    if ((opt.ednsVersion ?? 0) > 0) return { ok: false, reply: badVersion(msg) };
    edns = true;
    bufsize = Math.max(512, opt.udpPayloadSize ?? 512);
    dnssecOK = ((opt.flags ?? 0) & 0x8000) !== 0;
  }
  return { ok: true, query: { msg, bufsize, edns, do: dnssecOK } };
}

/** Encodes a reply: the OPT record mirrors the query's, and UDP replies are cut to fit. */
export function encodeReply(
  res: Message,
  q: { edns: boolean; bufsize: number; do: boolean },
  proto: "udp" | "tcp",
): Buffer {
  const additionals = res.additionals.filter((a) => (a.type as string) !== "OPT");
  if (q.edns) {
    additionals.push({
      type: "OPT",
      name: ".",
      udpPayloadSize: Math.min(q.bufsize, 4096),
      flags: q.do ? 0x8000 : 0,
      options: [],
    } as unknown as Answer);
  }
  const m: Packet = { ...res, additionals };
  let buf = dnsPacket.encode(m);
  const limit = proto === "udp" ? q.bufsize : 65535;
  if (buf.length <= limit) return buf;
  return truncate(m, limit, proto === "udp");
}

function truncate(m: Packet, limit: number, setTC: boolean): Buffer {
  const opt = (m.additionals ?? []).filter((a) => (a.type as string) === "OPT");
  // Drop the additional section, then authority, then answers from the end until it fits.
  const answers = [...(m.answers ?? [])];
  let candidate: Packet = { ...m, authorities: [], additionals: opt };
  let buf = dnsPacket.encode(candidate);
  let cut = false;
  if (buf.length <= limit) {
    return buf;
  }
  let lo = 0;
  let hi = answers.length;
  // Largest prefix of answers that fits.
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    const len = dnsPacket.encodingLength({ ...candidate, answers: answers.slice(0, mid) });
    if (len <= limit) lo = mid;
    else hi = mid - 1;
  }
  cut = true;
  candidate = {
    ...candidate,
    answers: answers.slice(0, lo),
    flags: (m.flags ?? 0) | (setTC && cut ? Flag.TC : 0),
  };
  buf = dnsPacket.encode(candidate);
  if (buf.length > limit)
    buf = dnsPacket.encode({ ...candidate, questions: m.questions, answers: [], additionals: [] });
  return buf;
}
