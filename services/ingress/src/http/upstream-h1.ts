/**
 * The plain-HTTP upstream client, as nginx's `proxy_pass` with an upstream `keepalive` block:
 * idle connections kept per endpoint (most recently used first, at most 320), the request head
 * written in one piece, the response head parsed here and the body framed by Content-Length,
 * chunked coding, or the upstream closing. Node's http.request costs several times more per
 * request (a ClientRequest, an agent queue, an IncomingMessage stream), and the proxy is on the
 * path of every request.
 */
import net from "node:net";
import type { OutgoingHttpHeaders } from "node:http";
import { ChunkedDecoder } from "./chunked.ts";
import { SINGLE_VALUE_HEADERS, trimOWS } from "./request-head.ts";

export type ResponseHeaders = Record<string, string | string[]>;

export interface BodySink {
  /** a chunk of the body; false asks for a pause until resume() */
  data(chunk: Buffer): boolean;
  end(): void;
  /** the body was cut short (the upstream closed early or went silent) */
  error(err: Error): void;
}

/** A response body, delivered to one sink; what arrived before the sink was attached comes first. */
export interface UpstreamBody {
  /** the whole body, when it has already arrived and no sink is attached yet */
  complete(): Buffer | undefined;
  pipe(sink: BodySink): void;
  pause(): void;
  resume(): void;
  /** stop reading (the client went away): the connection is not reused */
  destroy(): void;
}

export interface H1Head {
  status: number;
  headers: ResponseHeaders;
  body: UpstreamBody;
  /** HTTP/1.1 trailer fields are not forwarded (nginx drops them too) */
  trailers(): undefined;
}

const noTrailers = (): undefined => undefined;
/**
 * The sink of a body taken whole by complete(). One object for all: an object literal of arrow
 * functions here cost three Object.defineProperty calls per response (tsx keeps function names).
 */
const TAKEN_WHOLE: BodySink = { data: () => true, end: () => undefined, error: () => undefined };

/** Why an attempt failed, in the words of nginx's error log: a timeout is a 504, an error a 502. */
export class UpstreamError extends Error {
  constructor(
    readonly kind: "error" | "timeout",
    message: string,
    /** true when the request never reached the upstream (connect failed, or a stale keep-alive socket) */
    readonly safeToRetry: boolean,
  ) {
    super(message);
  }
}

export interface H1Request {
  ip: string;
  port: number;
  method: string;
  target: string;
  headers: OutgoingHttpHeaders;
  body: Buffer | undefined;
  connectTimeoutMs: number;
  readTimeoutMs: number;
}

const MAX_IDLE_PER_ENDPOINT = 320;
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);
/** nginx's proxy_buffer_size is 4k–8k; a larger head is "upstream sent too big header". */
const MAX_HEAD = 64 * 1024;
const HEAD_END = Buffer.from("\r\n\r\n");
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: |$)/;

type Framing = "none" | "length" | "chunked" | "close";

function writeHead(r: H1Request): string {
  let head = `${r.method} ${r.target} HTTP/1.1\r\n`;
  const headers = r.headers;
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined) continue;
    if (name === "content-length" && r.body) continue;
    if (Array.isArray(v)) for (const one of v) head += `${name}: ${one}\r\n`;
    else head += `${name}: ${v}\r\n`;
  }
  if (r.body) head += `content-length: ${r.body.length}\r\n`;
  return head + "\r\n";
}

class Body implements UpstreamBody {
  private queued: Buffer[] = [];
  private ended = false;
  private failed: Error | undefined;
  private sink: BodySink | undefined;

  constructor(private readonly conn: Connection) {}

  complete(): Buffer | undefined {
    if (!this.ended || this.sink) return undefined;
    const all = this.queued.length === 1 ? this.queued[0] : Buffer.concat(this.queued);
    this.queued = [];
    this.sink = TAKEN_WHOLE;
    return all;
  }

  pipe(sink: BodySink): void {
    this.sink = sink;
    const queued = this.queued;
    this.queued = [];
    for (const c of queued) sink.data(c);
    if (this.failed) sink.error(this.failed);
    else if (this.ended) sink.end();
  }

  pause(): void {
    this.conn.socket.pause();
  }

  resume(): void {
    this.conn.socket.resume();
  }

  destroy(): void {
    if (!this.ended) this.conn.abandon(this);
  }

  push(chunk: Buffer): void {
    if (this.sink) {
      if (!this.sink.data(chunk)) this.conn.socket.pause();
    } else this.queued.push(chunk);
  }

  end(): void {
    this.ended = true;
    this.sink?.end();
  }

  fail(err: Error): void {
    if (this.ended || this.failed) return;
    this.failed = err;
    this.sink?.error(err);
  }
}

interface Exchange {
  request: H1Request;
  resolve(head: H1Head): void;
  reject(err: UpstreamError): void;
  /** bytes of the response seen so far (a stale keep-alive connection has none) */
  received: number;
  body?: Body;
  /** the request method is HEAD: the response has no body whatever it says */
  head: boolean;
}

class Connection {
  readonly socket: net.Socket;
  reused = false;
  private exchange: Exchange | undefined;
  private pending: Buffer | undefined;
  private framing: Framing = "none";
  private remaining = 0;
  private chunks: ChunkedDecoder | undefined;
  private keepAlive = true;
  private timeoutMs = 0;
  private connectTimer: NodeJS.Timeout | undefined;
  connected = false;

  constructor(
    private readonly pool: H1Pool,
    readonly key: string,
    ip: string,
    port: number,
    connectTimeoutMs: number,
  ) {
    // Reads land in one shared buffer and come straight to onData, past the Readable stream
    // machinery (a few µs a response); what is kept is copied out.
    this.socket = net.connect({
      host: ip,
      port,
      noDelay: true,
      onread: { buffer: READ_BUFFER, callback: (n: number, buf: Uint8Array) => this.onRead(n, buf) },
    });
    this.connectTimer = setTimeout(
      () =>
        this.fail(
          new UpstreamError(
            "timeout",
            `upstream timed out (${connectTimeoutMs / 1000}s) while connecting to upstream`,
            true,
          ),
        ),
      connectTimeoutMs,
    );
    this.socket.once("connect", () => {
      this.connected = true;
      clearTimeout(this.connectTimer);
      this.connectTimer = undefined;
      if (this.exchange) this.armTimeout(this.exchange.request.readTimeoutMs);
    });
    this.socket.on("timeout", () => {
      if (this.exchange)
        this.fail(
          new UpstreamError(
            "timeout",
            this.exchange.body
              ? "upstream timed out while reading upstream"
              : `upstream timed out (${this.timeoutMs / 1000}s) while reading response header from upstream`,
            false,
          ),
        );
      // Idle for proxy-read-timeout (60 s by default, nginx's upstream keepalive_timeout too).
      else this.socket.destroy();
    });
    this.socket.on("end", () => {
      if (this.exchange?.body && this.framing === "close") this.complete();
      else
        this.fail(
          new UpstreamError(
            "error",
            this.exchange?.body
              ? "upstream prematurely closed connection while reading upstream"
              : "upstream prematurely closed connection while reading response header from upstream",
            this.retryable(),
          ),
        );
    });
    this.socket.on("error", (err: NodeJS.ErrnoException) =>
      this.fail(
        new UpstreamError(
          "error",
          `${err.code ?? err.message} while ${this.connected ? "reading response header from" : "connecting to"} upstream`,
          !this.connected || this.retryable(),
        ),
      ),
    );
    this.socket.on("close", () => {
      this.fail(new UpstreamError("error", "upstream closed the connection", this.retryable()));
      this.pool.forget(this);
    });
  }

  /** A request that never got a byte back on a reused connection met a stale keep-alive socket. */
  private retryable(): boolean {
    return this.reused && this.exchange !== undefined && this.exchange.received === 0;
  }

  private armTimeout(ms: number): void {
    if (ms !== this.timeoutMs) {
      this.timeoutMs = ms;
      this.socket.setTimeout(ms);
    }
  }

  send(ex: Exchange): void {
    this.exchange = ex;
    this.framing = "none";
    this.keepAlive = true;
    if (this.connected) this.armTimeout(ex.request.readTimeoutMs);
    const r = ex.request;
    const head = writeHead(r);
    if (r.body) {
      this.socket.cork();
      this.socket.write(head, "latin1");
      this.socket.write(r.body);
      this.socket.uncork();
    } else this.socket.write(head, "latin1");
  }

  /** The client went away in the middle of the body: this connection cannot carry another request. */
  abandon(body: Body): void {
    if (this.exchange?.body === body) {
      this.exchange = undefined;
      this.socket.destroy();
    }
  }

  private fail(err: UpstreamError): void {
    const ex = this.exchange;
    clearTimeout(this.connectTimer);
    this.exchange = undefined;
    this.socket.destroy();
    if (!ex) return;
    if (ex.body) ex.body.fail(err);
    else ex.reject(err);
  }

  private onRead(n: number, buf: Uint8Array): boolean {
    this.onData(Buffer.from(buf.subarray(0, n)));
    return !this.socket.isPaused();
  }

  private onData(chunk: Buffer): void {
    const ex = this.exchange;
    if (!ex) {
      // Bytes nobody asked for: the connection is out of step.
      this.socket.destroy();
      return;
    }
    ex.received += chunk.length;
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    while (buf.length > 0 && this.exchange === ex) {
      if (!ex.body) {
        const end = buf.indexOf(HEAD_END);
        if (end === -1) {
          if (buf.length > MAX_HEAD)
            return this.fail(new UpstreamError("error", "upstream sent too big header", false));
          this.pending = buf;
          return;
        }
        if (!this.parseHead(ex, buf.toString("latin1", 0, end))) return;
        buf = buf.subarray(end + 4);
        continue;
      }
      buf = this.parseBody(ex.body, buf);
    }
    if (this.exchange === ex && ex.body && this.framing === "none") this.complete();
  }

  /** false when the head was interim (1xx) or bad; the exchange then goes on or has failed. */
  private parseHead(ex: Exchange, text: string): boolean {
    const lines = text.split("\r\n");
    const m = STATUS_LINE.exec(lines[0]);
    if (!m) {
      this.fail(new UpstreamError("error", "upstream sent no valid HTTP/1.0 header", false));
      return false;
    }
    const status = Number(m[2]);
    const headers: ResponseHeaders = {};
    let length: string | undefined;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      const colon = line.indexOf(":");
      if (colon <= 0 || line.charCodeAt(0) === 32 || line.charCodeAt(0) === 9) {
        this.fail(new UpstreamError("error", "upstream sent invalid header", false));
        return false;
      }
      const name = line.slice(0, colon).toLowerCase();
      const value = trimOWS(line, colon + 1);
      if (name === "content-length") {
        if (length !== undefined && length !== value) {
          this.fail(
            new UpstreamError("error", 'upstream sent duplicate header line: "Content-Length"', false),
          );
          return false;
        }
        length = value;
      }
      const prev = headers[name];
      if (prev === undefined) headers[name] = name === "set-cookie" ? [value] : value;
      else if (name === "set-cookie") (prev as string[]).push(value);
      else if (!SINGLE_VALUE_HEADERS.has(name)) headers[name] = `${prev as string}, ${value}`;
    }
    if (status < 200) {
      // 100 Continue and 103 Early Hints come before the real answer.
      if (status === 101) {
        this.fail(new UpstreamError("error", "upstream sent an unexpected 101", false));
        return false;
      }
      return true;
    }
    const connection = headers["connection"] as string | undefined;
    this.keepAlive =
      m[1] === "1"
        ? !connection || !/\bclose\b/i.test(connection)
        : !!connection && /keep-alive/i.test(connection);
    const te = headers["transfer-encoding"] as string | undefined;
    if (ex.head || status === 204 || status === 304) this.framing = "none";
    else if (te !== undefined) {
      this.framing = /(?:^|,)\s*chunked\s*$/i.test(te) ? "chunked" : "close";
      this.chunks = new ChunkedDecoder();
    } else if (length !== undefined) {
      if (!/^\d{1,15}$/.test(length)) {
        this.fail(new UpstreamError("error", 'upstream sent invalid "Content-Length" header', false));
        return false;
      }
      this.remaining = Number(length);
      this.framing = this.remaining === 0 ? "none" : "length";
    } else this.framing = "close";
    if (this.framing === "close") this.keepAlive = false;
    ex.body = new Body(this);
    ex.resolve({ status, headers, body: ex.body, trailers: noTrailers });
    return true;
  }

  /** Consume body bytes; returns what is left over (a chunk-size line split across reads waits). */
  private parseBody(body: Body, buf: Buffer): Buffer {
    switch (this.framing) {
      case "length": {
        if (buf.length <= this.remaining) {
          this.remaining -= buf.length;
          body.push(buf);
          if (this.remaining === 0) this.framing = "none";
          return buf.subarray(buf.length);
        }
        // More than the body: the upstream is out of step.
        body.push(buf.subarray(0, this.remaining));
        this.remaining = 0;
        this.framing = "none";
        this.keepAlive = false;
        return buf.subarray(buf.length);
      }
      case "close":
        body.push(buf);
        return buf.subarray(buf.length);
      case "chunked":
        return this.parseChunked(body, buf);
      default:
        // Bytes after a complete response.
        this.keepAlive = false;
        return buf.subarray(buf.length);
    }
  }

  private parseChunked(body: Body, buf: Buffer): Buffer {
    const step = this.chunks!.push(buf);
    for (const c of step.data) body.push(c);
    if (step.error) {
      this.fail(new UpstreamError("error", "upstream sent invalid chunked response", false));
      return buf.subarray(buf.length);
    }
    if (!step.done) return buf.subarray(buf.length);
    // The empty line after the (ignored) trailer fields ends the body.
    this.framing = "none";
    return step.rest ?? buf.subarray(buf.length);
  }

  private complete(): void {
    const ex = this.exchange!;
    this.exchange = undefined;
    if (this.keepAlive && !this.pending) this.pool.release(this);
    else this.socket.destroy();
    ex.body!.end();
  }
}

export class H1Pool {
  private readonly idle = new Map<string, Connection[]>();
  private readonly all = new Set<Connection>();

  request(r: H1Request): Promise<H1Head> {
    return new Promise((resolve, reject) => {
      const key = `${r.ip}:${r.port}`;
      const list = this.idle.get(key);
      let conn = list?.pop();
      if (!conn) {
        conn = new Connection(this, key, r.ip, r.port, r.connectTimeoutMs);
        this.all.add(conn);
      }
      conn.send({ request: r, resolve, reject, received: 0, head: r.method === "HEAD" });
    });
  }

  release(conn: Connection): void {
    conn.reused = true;
    let list = this.idle.get(conn.key);
    if (!list) this.idle.set(conn.key, (list = []));
    if (list.length >= MAX_IDLE_PER_ENDPOINT) conn.socket.destroy();
    else list.push(conn);
  }

  forget(conn: Connection): void {
    this.all.delete(conn);
    const list = this.idle.get(conn.key);
    if (!list) return;
    const i = list.indexOf(conn);
    if (i !== -1) list.splice(i, 1);
    if (list.length === 0) this.idle.delete(conn.key);
  }

  close(): void {
    for (const c of this.all) c.socket.destroy();
    this.all.clear();
    this.idle.clear();
  }
}
