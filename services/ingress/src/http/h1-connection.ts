/**
 * The client side of HTTP/1.x, as nginx serves it: one connection, requests read one after the
 * other (pipelined ones wait their turn), bodies framed by Content-Length or chunked coding,
 * `Expect: 100-continue`, upgrades handed over with the socket, keep-alive until the client
 * leaves, 1000 requests (keepalive_requests) or 75 s idle (keepalive_timeout), malformed heads
 * answered by nginx's status pages and reported for the access log.
 *
 * Node's http.Server does this too, at about twice the CPU per request (an IncomingMessage and a
 * ServerResponse stream per request); the ingress is on the path of every request of the lab.
 */
import { EventEmitter } from "node:events";
import { STATUS_CODES, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http";
import type net from "node:net";
import { ChunkedDecoder } from "./chunked.ts";
import { rawResponse, reason } from "./pages.ts";
import { parseRequestHead, type InvalidHead } from "./request-head.ts";

export interface H1Options {
  request(req: H1Request, res: H1Response): void;
  upgrade(req: H1Request, socket: net.Socket, head: Buffer): void;
  /** a head that could not be served: answered here, reported for the access log */
  rejected(socket: net.Socket, bad: InvalidHead, bytesRead: number, bytesSent: number): void;
  /** keepalive_requests */
  maxRequests: number;
  /** while true, every response closes its connection */
  draining(): boolean;
}

/** client_header_timeout and keepalive_timeout */
const HEADER_TIMEOUT_MS = 60_000;
const KEEPALIVE_TIMEOUT_MS = 75_000;
/** Pipelined bytes held while a response is under way, before reading pauses. */
const MAX_PENDING = 64 * 1024;
const CONTINUE = "HTTP/1.1 100 Continue\r\n\r\n";

let dateSecond = -1;
let dateValue = "";
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateValue = new Date(second * 1000).toUTCString();
  }
  return dateValue;
}

/** nginx's phrase where it has one, else the usual one. */
function statusText(status: number): string {
  const text = reason(status);
  return text === "Unknown" ? (STATUS_CODES[status] ?? "Unknown") : text;
}

function hasToken(value: string | string[] | undefined, token: string): boolean {
  if (value === undefined) return false;
  const v = Array.isArray(value) ? value.join(",") : value;
  return v.split(",").some((t) => t.trim().toLowerCase() === token);
}

/**
 * A request body as the proxy gets it: the bytes, none, "too-large" past client_max_body_size,
 * or "unreadable" when it cannot arrive whole (the client left, or its chunks are broken).
 */
export type RequestBody = Buffer | undefined | "too-large" | "unreadable";

type BodyFraming =
  { kind: "none" } | { kind: "length"; left: number } | { kind: "chunked"; decoder: ChunkedDecoder };

/** What the ingress reads of a request; the field names are IncomingMessage's. */
export class H1Request {
  readonly httpVersionMajor = 1;
  readonly httpVersion: string;
  /** the whole body has been read (or there is none) */
  complete: boolean;
  private chunks: Buffer[] = [];
  private size = 0;
  private waiter: ((body: RequestBody) => void) | undefined;
  /** why the body can no longer be read whole (the client left, its framing broke) */
  private failure: string | undefined;
  private limit = Infinity;
  private discarding = false;
  private continueSent = false;

  constructor(
    readonly method: string,
    readonly url: string,
    readonly httpVersionMinor: 0 | 1,
    readonly headers: IncomingHttpHeaders,
    readonly rawHeaders: string[],
    readonly socket: net.Socket,
    private readonly framing: BodyFraming,
  ) {
    this.httpVersion = httpVersionMinor === 0 ? "1.0" : "1.1";
    this.complete = framing.kind === "none";
  }

  /**
   * The whole body (nginx's proxy_request_buffering), undefined when there is none, "too-large"
   * once it passes `limit` bytes (client_max_body_size; the rest is read and dropped),
   * "unreadable" when it never will arrive whole.
   */
  readBody(limit: number): Promise<RequestBody> {
    if (this.failure !== undefined) return Promise.resolve("unreadable");
    if (this.complete && this.size === 0) return Promise.resolve(undefined);
    this.limit = limit;
    if (!this.continueSent && hasToken(this.headers.expect, "100-continue") && !this.complete) {
      this.continueSent = true;
      this.socket.write(CONTINUE);
    }
    if (this.size > limit) {
      this.resume();
      return Promise.resolve("too-large");
    }
    if (this.complete) return Promise.resolve(this.body());
    return new Promise((resolve) => (this.waiter = resolve));
  }

  /** Drop the body instead of reading it (the answer does not need it). */
  resume(): void {
    this.discarding = true;
    this.chunks = [];
  }

  private body(): Buffer | undefined {
    if (this.size === 0) return undefined;
    return this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
  }

  /** Body bytes from the connection; returns what is left after the body, or an error. */
  feed(buf: Buffer): { rest: Buffer | undefined; error?: string } {
    const f = this.framing;
    let rest: Buffer | undefined;
    if (f.kind === "length") {
      const take = Math.min(f.left, buf.length);
      this.take(buf.subarray(0, take));
      f.left -= take;
      if (f.left === 0) {
        rest = buf.subarray(take);
        this.ended();
      }
    } else if (f.kind === "chunked") {
      const step = f.decoder.push(buf);
      for (const c of step.data) this.take(c);
      if (step.error) return { rest: undefined, error: step.error };
      if (step.done) {
        rest = step.rest;
        this.ended();
      }
    } else rest = buf;
    return { rest: rest && rest.length ? rest : undefined };
  }

  private take(c: Buffer): void {
    if (c.length === 0) return;
    this.size += c.length;
    if (this.discarding) return;
    if (this.size > this.limit) {
      this.resume();
      const w = this.waiter;
      this.waiter = undefined;
      w?.("too-large");
      return;
    }
    this.chunks.push(c);
  }

  private ended(): void {
    this.complete = true;
    const w = this.waiter;
    this.waiter = undefined;
    w?.(this.discarding ? undefined : this.body());
  }

  /** The body will not arrive whole: whoever waits for it hears so. */
  fail(why: string): void {
    if (this.complete || this.failure !== undefined) return;
    this.failure = why;
    const w = this.waiter;
    this.waiter = undefined;
    w?.("unreadable");
  }
}

/** What the ingress writes of a response; the member names are ServerResponse's. */
export class H1Response extends EventEmitter {
  headersSent = false;
  writableFinished = false;
  destroyed = false;
  /** false: the connection closes after this response */
  shouldKeepAlive: boolean;
  private head = "";
  private contentLength: number | string | undefined;
  private framing: "length" | "chunked" | "close" | "none" = "length";

  constructor(
    private readonly conn: H1Connection,
    private readonly req: H1Request,
    keepAlive: boolean,
  ) {
    super();
    this.shouldKeepAlive = keepAlive;
  }

  getHeader(name: string): number | string | undefined {
    return name === "content-length" ? this.contentLength : undefined;
  }

  writeHead(status: number, reasonText: string | undefined, headers: OutgoingHttpHeaders): this {
    if (this.headersSent) throw new Error("headers already sent");
    let head = `HTTP/1.1 ${status} ${reasonText ?? statusText(status)}\r\nServer: nginx\r\nDate: ${httpDate()}\r\n`;
    let length: number | string | undefined;
    for (const name in headers) {
      const v = headers[name];
      if (v === undefined) continue;
      if (name === "content-length") length = v as number | string;
      if (Array.isArray(v)) {
        for (const one of v) head += `${name}: ${checked(name, one)}\r\n`;
      } else head += `${name}: ${checked(name, String(v))}\r\n`;
    }
    this.contentLength = length;
    const bodiless = this.req.method === "HEAD" || status === 204 || status === 304 || status < 200;
    if (bodiless) this.framing = "none";
    else if (length !== undefined) this.framing = "length";
    else if (this.req.httpVersionMinor === 1) {
      this.framing = "chunked";
      head += "Transfer-Encoding: chunked\r\n";
    } else {
      this.framing = "close";
      this.shouldKeepAlive = false;
    }
    // A body the client is still sending is dropped by closing, not read to its end.
    if (!this.req.complete) this.shouldKeepAlive = false;
    if (this.conn.draining()) this.shouldKeepAlive = false;
    head += this.shouldKeepAlive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
    this.head = head;
    this.headersSent = true;
    return this;
  }

  /** A body chunk; false when the socket's buffer is full (wait for "drain"). */
  write(chunk: Buffer | string): boolean {
    if (this.destroyed || this.writableFinished) return false;
    const socket = this.conn.socket;
    const buf = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    let ok: boolean;
    if (this.framing === "none" || buf.length === 0) {
      if (!this.head) return true;
      ok = socket.write(this.takeHead(), "latin1");
    } else if (this.framing === "chunked") {
      socket.cork();
      socket.write(this.takeHead() + buf.length.toString(16) + "\r\n", "latin1");
      socket.write(buf);
      ok = socket.write("\r\n");
      socket.uncork();
    } else if (this.head) {
      ok = socket.write(concatHead(this.takeHead(), buf));
    } else ok = socket.write(buf);
    if (!ok) socket.once("drain", () => this.emit("drain"));
    return ok;
  }

  end(chunk?: Buffer | string): void {
    if (this.destroyed || this.writableFinished) return;
    if (!this.headersSent) this.writeHead(200, undefined, {});
    const socket = this.conn.socket;
    const buf = chunk === undefined ? undefined : typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    if (this.framing === "chunked") {
      if (buf && buf.length) this.write(buf);
      socket.write(this.takeHead() + "0\r\n\r\n", "latin1");
    } else if (buf && buf.length && this.framing !== "none") {
      socket.write(this.head ? concatHead(this.takeHead(), buf) : buf);
    } else if (this.head) socket.write(this.takeHead(), "latin1");
    this.writableFinished = true;
    this.conn.responseDone(this);
    this.emit("finish");
    this.emit("close");
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.conn.socket.destroy();
    if (!this.writableFinished) this.emit("close");
  }

  /** The connection closed under this response. */
  closed(): void {
    if (this.writableFinished || this.destroyed) return;
    this.destroyed = true;
    this.emit("close");
  }

  private takeHead(): string {
    const h = this.head;
    this.head = "";
    return h;
  }
}

/** Header values may not carry line breaks (response splitting); Node's ServerResponse throws too. */
function checked(name: string, value: string): string {
  if (/[\r\n\0]/.test(value)) throw new TypeError(`Invalid character in header content ["${name}"]`);
  return value;
}

function concatHead(head: string, body: Buffer): Buffer {
  const headLength = Buffer.byteLength(head, "latin1");
  const out = Buffer.allocUnsafe(headLength + body.length);
  out.write(head, 0, "latin1");
  body.copy(out, headLength);
  return out;
}

/** One client connection. */
export class H1Connection {
  private pending: Buffer | undefined;
  private current: { req: H1Request; res: H1Response } | undefined;
  /** the request whose body is still arriving */
  private reading: H1Request | undefined;
  private served = 0;
  private detached = false;
  private closed = false;

  constructor(
    readonly socket: net.Socket,
    private readonly opts: H1Options,
  ) {
    socket.setTimeout(HEADER_TIMEOUT_MS);
    socket.on("timeout", () => {
      // A response under way is the upstream timeouts' business.
      if (!this.current) socket.destroy();
    });
    socket.on("data", (c: Buffer) => this.onData(c));
    socket.on("error", () => socket.destroy());
    socket.on("close", () => {
      this.closed = true;
      this.reading?.fail("client closed the connection");
      this.current?.res.closed();
    });
  }

  draining(): boolean {
    return this.opts.draining();
  }

  /** Idle: no request under way and nothing buffered; safe to close when the server stops. */
  get idle(): boolean {
    return !this.current && !this.pending;
  }

  private onData(chunk: Buffer): void {
    if (this.detached) return;
    if (this.reading) {
      const { rest, error } = this.reading.feed(chunk);
      if (error) {
        // The request is with the handler already: it answers 400 (and logs it) when it reads
        // the body; nothing more is read from this connection.
        this.reading.fail(error);
        this.reading = undefined;
        this.detached = true;
        this.socket.pause();
        return;
      }
      if (!this.reading.complete) return;
      this.reading = undefined;
      if (rest) this.hold(rest);
      return;
    }
    this.hold(chunk);
  }

  private hold(bytes: Buffer): void {
    this.pending = this.pending ? Buffer.concat([this.pending, bytes]) : bytes;
    if (this.current) {
      if (this.pending.length > MAX_PENDING) this.socket.pause();
      return;
    }
    this.next();
  }

  /** Parse and dispatch the next request in the buffer, if a whole head is there. */
  private next(): void {
    let buf = this.pending;
    if (!buf || this.current || this.closed) return;
    // Empty lines between requests are skipped, as nginx does.
    let start = 0;
    while (start < buf.length && (buf[start] === 13 || buf[start] === 10)) start++;
    if (start === buf.length) {
      this.pending = undefined;
      return;
    }
    const verdict = parseRequestHead(buf, start);
    if (verdict.kind === "incomplete") {
      this.pending = start ? buf.subarray(start) : buf;
      return;
    }
    if (verdict.kind === "invalid") return this.reject(verdict, buf.length);
    buf = buf.subarray(start + verdict.length);
    this.pending = undefined;

    const h = verdict.headers;
    const te = h["transfer-encoding"];
    const cl = h["content-length"];
    let framing: BodyFraming = { kind: "none" };
    if (te !== undefined) {
      if (cl !== undefined)
        return this.reject(
          bad('client sent "Content-Length" and "Transfer-Encoding" headers at the same time', verdict),
          buf.length,
        );
      if (te.trim().toLowerCase() !== "chunked")
        return this.reject(
          { ...bad(`client sent unknown "Transfer-Encoding": "${te}"`, verdict), status: 501 },
          buf.length,
        );
      framing = { kind: "chunked", decoder: new ChunkedDecoder() };
    } else if (cl !== undefined) {
      if (!/^\d{1,15}$/.test(cl))
        return this.reject(bad(`client sent invalid "Content-Length" header`, verdict), buf.length);
      if (Number(cl) > 0) framing = { kind: "length", left: Number(cl) };
    }
    const keepAlive =
      verdict.minor === 1 ? !hasToken(h.connection, "close") : hasToken(h.connection, "keep-alive");
    const req = new H1Request(
      verdict.method,
      verdict.target,
      verdict.minor,
      h,
      verdict.rawHeaders,
      this.socket,
      framing,
    );

    if (h.upgrade !== undefined && hasToken(h.connection, "upgrade") && verdict.minor === 1) {
      this.detached = true;
      this.socket.removeAllListeners("data");
      this.socket.removeAllListeners("timeout");
      this.socket.setTimeout(0);
      this.opts.upgrade(req, this.socket, buf);
      return;
    }

    this.served++;
    const res = new H1Response(this, req, keepAlive && this.served < this.opts.maxRequests);
    this.current = { req, res };
    if (!req.complete) {
      this.reading = req;
      if (buf.length) {
        const { rest, error } = req.feed(buf);
        if (error) return this.reject(bad(error, verdict), buf.length);
        if (req.complete) {
          this.reading = undefined;
          this.pending = rest;
        }
      }
    } else if (buf.length) this.pending = buf;
    this.opts.request(req, res);
  }

  /** The response ended: keep the connection for the next request, or close it. */
  responseDone(res: H1Response): void {
    if (this.current?.res !== res) return;
    const { req } = this.current;
    this.current = undefined;
    if (!res.shouldKeepAlive || !req.complete) {
      this.socket.end();
      this.closed = true;
      return;
    }
    if (this.served === 1) this.socket.setTimeout(KEEPALIVE_TIMEOUT_MS);
    if (this.socket.isPaused()) this.socket.resume();
    if (this.pending) queueMicrotask(() => this.next());
  }

  /** Answer a head or body that cannot be served with nginx's page, log it, and close. */
  private reject(bad: InvalidHead, bytesRead: number): void {
    this.pending = undefined;
    this.reading = undefined;
    this.detached = true;
    const title = bad.title;
    const page = rawResponse(bad.status, title);
    if (!this.socket.destroyed && this.socket.writable) this.socket.end(page);
    else this.socket.destroy();
    this.opts.rejected(this.socket, bad, bytesRead, Buffer.byteLength(page) - page.indexOf("\r\n\r\n") - 4);
  }

  closeIfIdle(): void {
    if (this.idle && !this.reading) this.socket.end();
  }
}

function bad(reasonText: string, head: { method: string; target: string; minor: 0 | 1 }): InvalidHead {
  return {
    kind: "invalid",
    status: 400,
    reason: reasonText,
    requestLine: `${head.method} ${head.target} HTTP/1.${head.minor}`,
  };
}
