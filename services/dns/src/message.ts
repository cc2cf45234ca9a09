/**
 * DNS messages as dns-packet values, with the header bits and rcodes named as in RFC 1035.
 */
import type { Answer, Packet, Question } from "dns-packet";

export const Rcode = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;
const rcodeNames = [
  "NOERROR",
  "FORMERR",
  "SERVFAIL",
  "NXDOMAIN",
  "NOTIMP",
  "REFUSED",
  "YXDOMAIN",
  "YXRRSET",
  "NXRRSET",
  "NOTAUTH",
  "NOTZONE",
];
export function rcodeName(code: number): string {
  return rcodeNames[code] ?? `RCODE${code}`;
}

export const Flag = { AA: 0x400, TC: 0x200, RD: 0x100, RA: 0x80, AD: 0x20, CD: 0x10 } as const;

export type Message = Packet & {
  flags: number;
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
  /** Set by a plugin whose records repeat (cache, kubernetes): lets the server reuse their encoding. */
  wire?: WireSlot;
};

/**
 * Encoded replies for one fixed set of record arrays. The server reuses an encoding only while
 * the reply still carries these very arrays (a plugin that changes records replaces the arrays),
 * with the same flags and question, for a query identical to the one it was made for except for
 * its id; so a reused reply is byte for byte what encoding would give.
 */
export interface WireSlot {
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
  /** The replies made so far, a handful (flags, EDNS sizes; cookies make more). */
  replies: ReplyVariant[];
}

/** A reply as sent for one query: reused for the same query bytes after the id, on the same transport. */
export interface ReplyVariant {
  proto: "udp" | "tcp";
  /** The query after its id. */
  query: Buffer;
  flags: number;
  name: string;
  type: string;
  buf: Buffer;
}

/** The variant made for this query (its bytes after the id) on this transport, compared byte by byte. */
export function findVariant(replies: ReplyVariant[], query: Buffer, proto: "udp" | "tcp"): number {
  const len = query.length - 2;
  for (let v = 0; v < replies.length; v++) {
    const r = replies[v]!;
    if (r.proto !== proto || r.query.length !== len) continue;
    const q = r.query;
    let i = 0;
    while (i < len && q[i] === query[i + 2]) i++;
    if (i === len) return v;
  }
  return -1;
}

export function wireSlot(answers: Answer[], authorities: Answer[], additionals: Answer[]): WireSlot {
  return { answers, authorities, additionals, replies: [] };
}

export function rcodeOf(m: Packet): number {
  return (m.flags ?? 0) & 0xf;
}

export function setRcode(m: Message, rcode: number): Message {
  m.flags = (m.flags & ~0xf) | rcode;
  return m;
}

export interface Remote {
  address: string;
  port: number;
  family: 4 | 6;
}

/** A query as the plugins see it. */
export interface Request {
  msg: Packet;
  question: Question;
  remote: Remote;
  proto: "udp" | "tcp";
  /** Size of the query on the wire. */
  size: number;
  /** EDNS0 UDP payload size, 512 without EDNS0. */
  bufsize: number;
  edns: boolean;
  do: boolean;
  /** `dns://:53`, the metrics label of the listener. */
  server: string;
  /** The server block zone that matched the query. */
  zone: string;
  /** Set by the chain: the plugin that wrote the response. */
  plugin?: string;
  /** Set for queries a plugin sends through its own server (ExternalName chasing). */
  internal?: boolean;
  /** Called once the reply is on the wire, with its size (log and prometheus use it). */
  afterWrite?: ((res: Message, size: number) => void)[];
  /** When the server received the query (performance.now()). */
  start: number;
}

/** The reply header for a query: same id, opcode, RD and CD; no records yet. */
export function reply(
  req: Pick<Request, "msg" | "question">,
  rcode: number = Rcode.NOERROR,
  authoritative = false,
): Message {
  const q = req.msg;
  const flags = ((q.flags ?? 0) & (0x7800 | Flag.RD | Flag.CD)) | (authoritative ? Flag.AA : 0) | rcode;
  return {
    id: q.id ?? 0,
    type: "response",
    flags,
    questions: [req.question],
    answers: [],
    authorities: [],
    additionals: [],
  };
}

/** An error a plugin returns instead of a response; the server answers with its rcode. */
export class DnsError extends Error {
  constructor(
    readonly rcode: number,
    message: string,
  ) {
    super(message);
    this.name = "DnsError";
  }
}

export type Handler = (req: Request) => Promise<Message>;

export interface Plugin {
  readonly name: string;
  serve(req: Request, next: Handler): Promise<Message>;
}

export function normalize(m: Packet): Message {
  return {
    ...m,
    flags: m.flags ?? 0,
    answers: m.answers ?? [],
    authorities: m.authorities ?? [],
    additionals: m.additionals ?? [],
  } as Message;
}

export function lowerName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith(".") ? lower : `${lower}.`;
}

/** `name` is `zone` or below it (both FQDN, lower case). */
export function inZone(name: string, zone: string): boolean {
  if (zone === ".") return true;
  return name === zone || name.endsWith(`.${zone}`);
}

/** The longest zone of `zones` that `name` belongs to. */
export function matchZone(name: string, zones: readonly string[]): string | undefined {
  let best: string | undefined;
  for (const z of zones) if (inZone(name, z) && (best === undefined || z.length > best.length)) best = z;
  return best;
}

export function fqdnCase(name: string): string {
  return name.endsWith(".") ? name : `${name}.`;
}

/** A record seen loosely (dns-packet's Answer is a union in which OPT has no ttl/data). */
export interface RR {
  name: string;
  type: string;
  ttl?: number;
  class?: string;
  data?: unknown;
}
export const rrOf = (a: Answer): RR => a as unknown as RR;
