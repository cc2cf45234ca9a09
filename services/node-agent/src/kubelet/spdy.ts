import zlib from "node:zlib";

/**
 * SPDY/3.1 framing, as far as Kubernetes streaming needs it (SYN_STREAM, SYN_REPLY, RST_STREAM,
 * SETTINGS, PING, GOAWAY, WINDOW_UPDATE, DATA). kubectl port-forward tunnels it through a WebSocket.
 */
export const SYN_STREAM = 1;
export const SYN_REPLY = 2;
export const RST_STREAM = 3;
export const SETTINGS = 4;
export const PING = 6;
export const GOAWAY = 7;
export const HEADERS = 8;
export const WINDOW_UPDATE = 9;
export const FLAG_FIN = 0x01;

export const RST_PROTOCOL_ERROR = 1;
export const RST_INVALID_STREAM = 2;
export const RST_REFUSED_STREAM = 3;
export const RST_CANCEL = 5;

export type Frame =
  | { control: true; type: number; flags: number; payload: Buffer }
  | { control: false; streamId: number; flags: number; data: Buffer };

/** The SPDY/3 header-compression dictionary: length-prefixed names, then a raw tail (spec §2.6.10.1). */
const DICT_WORDS = [
  "options",
  "head",
  "post",
  "put",
  "delete",
  "trace",
  "accept",
  "accept-charset",
  "accept-encoding",
  "accept-language",
  "accept-ranges",
  "age",
  "allow",
  "authorization",
  "cache-control",
  "connection",
  "content-base",
  "content-encoding",
  "content-language",
  "content-length",
  "content-location",
  "content-md5",
  "content-range",
  "content-type",
  "date",
  "etag",
  "expect",
  "expires",
  "from",
  "host",
  "if-match",
  "if-modified-since",
  "if-none-match",
  "if-range",
  "if-unmodified-since",
  "last-modified",
  "location",
  "max-forwards",
  "pragma",
  "proxy-authenticate",
  "proxy-authorization",
  "range",
  "referer",
  "retry-after",
  "server",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "user-agent",
  "vary",
  "via",
  "warning",
  "www-authenticate",
  "method",
  "get",
  "status",
  "200 OK",
  "version",
  "HTTP/1.1",
  "url",
  "public",
  "set-cookie",
  "keep-alive",
  "origin",
];
const DICT_TAIL =
  "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505" +
  "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized" +
  "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable" +
  "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT" +
  "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain," +
  "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

export const SPDY3_DICTIONARY: Buffer = Buffer.concat([
  ...DICT_WORDS.map((w) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(w.length);
    return Buffer.concat([len, Buffer.from(w, "latin1")]);
  }),
  Buffer.from(DICT_TAIL, "latin1"),
]);

/** Incremental frame reader over a byte stream; throws on frames larger than the limit. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly maxFrame = 16 << 20) {}

  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const frames: Frame[] = [];
    while (this.buf.length >= 8) {
      const len = this.buf.readUIntBE(5, 3);
      if (len > this.maxFrame) throw new Error(`SPDY frame of ${len} bytes is too large`);
      if (this.buf.length < 8 + len) break;
      const flags = this.buf[4];
      const body = this.buf.subarray(8, 8 + len);
      if (this.buf[0] & 0x80) {
        const version = this.buf.readUInt16BE(0) & 0x7fff;
        if (version !== 3) throw new Error(`unsupported SPDY version ${version}`);
        frames.push({ control: true, type: this.buf.readUInt16BE(2), flags, payload: Buffer.from(body) });
      } else {
        frames.push({
          control: false,
          streamId: this.buf.readUInt32BE(0) & 0x7fffffff,
          flags,
          data: Buffer.from(body),
        });
      }
      this.buf = this.buf.subarray(8 + len);
    }
    return frames;
  }
}

export function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(0x8003, 0);
  h.writeUInt16BE(type, 2);
  h[4] = flags;
  h.writeUIntBE(payload.length, 5, 3);
  return Buffer.concat([h, payload]);
}

export function dataFrame(streamId: number, flags: number, data: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(streamId & 0x7fffffff, 0);
  h[4] = flags;
  h.writeUIntBE(data.length, 5, 3);
  return Buffer.concat([h, data]);
}

export function u32(...values: number[]): Buffer {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => b.writeUInt32BE(v >>> 0, 4 * i));
  return b;
}

export function encodeHeaderBlock(headers: Record<string, string>): Buffer {
  const parts: Buffer[] = [u32(Object.keys(headers).length)];
  for (const [k, v] of Object.entries(headers)) {
    const kb = Buffer.from(k.toLowerCase());
    const vb = Buffer.from(v);
    parts.push(u32(kb.length), kb, u32(vb.length), vb);
  }
  return Buffer.concat(parts);
}

export function decodeHeaderBlock(block: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  const need = (n: number) => {
    if (off + n > block.length) throw new Error("truncated SPDY header block");
  };
  need(4);
  const count = block.readUInt32BE(off);
  off += 4;
  if (count > 1000) throw new Error("too many SPDY headers");
  for (let i = 0; i < count; i++) {
    need(4);
    const kl = block.readUInt32BE(off);
    off += 4;
    need(kl);
    const k = block
      .subarray(off, off + kl)
      .toString()
      .toLowerCase();
    off += kl;
    need(4);
    const vl = block.readUInt32BE(off);
    off += 4;
    need(vl);
    out[k] = block.subarray(off, off + vl).toString();
    off += vl;
  }
  return out;
}

/** One zlib context per direction for the whole session, flushed per header block. */
export class HeaderCodec {
  private inflater = zlib.createInflate({ dictionary: SPDY3_DICTIONARY });
  private deflater = zlib.createDeflate({ dictionary: SPDY3_DICTIONARY });
  private inChain: Promise<unknown> = Promise.resolve();
  private outChain: Promise<unknown> = Promise.resolve();

  constructor() {
    this.inflater.on("error", () => {});
    this.deflater.on("error", () => {});
  }

  private pump(z: zlib.Inflate | zlib.Deflate, input: Buffer | undefined): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      const onData = (d: Buffer) => chunks.push(d);
      const onError = (e: Error) => {
        z.off("data", onData);
        reject(e);
      };
      z.on("data", onData);
      z.once("error", onError);
      if (input && input.length) z.write(input);
      z.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        z.off("data", onData);
        z.off("error", onError);
        resolve(Buffer.concat(chunks));
      });
    });
  }

  decode(compressed: Buffer): Promise<Record<string, string>> {
    const p = this.inChain.then(() => this.pump(this.inflater, compressed)).then(decodeHeaderBlock);
    this.inChain = p.catch(() => undefined);
    return p;
  }

  encode(headers: Record<string, string>): Promise<Buffer> {
    const p = this.outChain.then(() => this.pump(this.deflater, encodeHeaderBlock(headers)));
    this.outChain = p.catch(() => undefined);
    return p;
  }

  close(): void {
    this.inflater.close();
    this.deflater.close();
  }
}
