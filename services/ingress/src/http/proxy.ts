/**
 * One attempt to an upstream endpoint: HTTP/1.1 (upstream-h1.ts's keep-alive pool), HTTPS
 * (a keep-alive agent), or gRPC over h2c / h2. Resolves when the response head arrives; rejects
 * with an UpstreamError that says whether the failure was a timeout (504) or an error (502) and
 * whether a retry is safe.
 */
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http";
import https from "node:https";
import http2 from "node:http2";
import type { Readable } from "node:stream";
import type { BackendProtocol } from "../annotations/backend-protocol.ts";
import type { ProxyTimeouts } from "../annotations/proxy-timeouts.ts";
import type { UpstreamEndpoint } from "../model.ts";
import { H1Pool, UpstreamError, type BodySink, type UpstreamBody } from "./upstream-h1.ts";

/** A Node stream as an UpstreamBody (the HTTPS and HTTP/2 upstreams). */
class StreamBody implements UpstreamBody {
  constructor(private readonly stream: Readable) {}
  complete(): undefined {
    return undefined;
  }
  pipe(sink: BodySink): void {
    const s = this.stream;
    s.on("data", (c: Buffer) => {
      if (!sink.data(c)) s.pause();
    });
    s.on("end", () => sink.end());
    s.on("error", (err) => sink.error(err));
  }
  pause(): void {
    this.stream.pause();
  }
  resume(): void {
    this.stream.resume();
  }
  destroy(): void {
    if (!this.stream.readableEnded) this.stream.destroy();
  }
}

export { UpstreamError };
export type { BodySink, UpstreamBody };

export interface UpstreamResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: UpstreamBody;
  /** HTTP/2 trailers (gRPC status), once the body ended */
  trailers(): Record<string, string | string[]> | undefined;
}

export interface AttemptOptions {
  endpoint: UpstreamEndpoint;
  protocol: BackendProtocol;
  method: string;
  target: string;
  headers: OutgoingHttpHeaders;
  body: Buffer | undefined;
  timeouts: ProxyTimeouts;
}

export class UpstreamPool {
  readonly httpAgent = new http.Agent({
    keepAlive: true,
    maxFreeSockets: 320,
    timeout: 60_000,
    scheduling: "lifo",
  });
  readonly httpsAgent = new https.Agent({
    keepAlive: true,
    maxFreeSockets: 320,
    timeout: 60_000,
    rejectUnauthorized: false,
  });
  private readonly sessions = new Map<string, http2.ClientHttp2Session>();
  private readonly plain = new H1Pool();

  attempt(o: AttemptOptions): Promise<UpstreamResponse> {
    if (o.protocol === "GRPC" || o.protocol === "GRPCS") return this.attemptH2(o);
    if (o.protocol === "HTTPS") return this.attemptH1(o);
    return this.plain.request({
      ip: o.endpoint.ip,
      port: o.endpoint.port,
      method: o.method,
      target: o.target,
      headers: o.headers,
      body: o.body,
      connectTimeoutMs: o.timeouts.connectSeconds * 1000,
      readTimeoutMs: o.timeouts.readSeconds * 1000,
    }) as Promise<UpstreamResponse>;
  }

  private attemptH1(o: AttemptOptions): Promise<UpstreamResponse> {
    const secure = o.protocol === "HTTPS";
    const mod = secure ? https : http;
    return new Promise((resolve, reject) => {
      let settled = false;
      let connected = false;
      let connectTimer: NodeJS.Timeout | undefined;
      const fail = (err: UpstreamError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(connectTimer);
        req.destroy();
        reject(err);
      };
      const req = mod.request({
        host: o.endpoint.ip,
        port: o.endpoint.port,
        method: o.method,
        path: o.target,
        headers: o.headers,
        agent: secure ? this.httpsAgent : this.httpAgent,
        setHost: false,
      });
      req.on("socket", (socket) => {
        socket.setNoDelay(true);
        const armRead = (): void => {
          connected = true;
          clearTimeout(connectTimer);
          req.setTimeout(o.timeouts.readSeconds * 1000, () => {
            // After the head, a stalled body is cut as nginx does: the client sees a short response.
            if (settled) req.destroy(new Error("upstream timed out while reading upstream"));
            else
              fail(
                new UpstreamError(
                  "timeout",
                  `upstream timed out (${o.timeouts.readSeconds}s) while reading response header from upstream`,
                  false,
                ),
              );
          });
        };
        if (socket.connecting) {
          connectTimer = setTimeout(
            () =>
              fail(
                new UpstreamError(
                  "timeout",
                  `upstream timed out (${o.timeouts.connectSeconds}s) while connecting to upstream`,
                  true,
                ),
              ),
            o.timeouts.connectSeconds * 1000,
          );
          socket.once(secure ? "secureConnect" : "connect", armRead);
        } else armRead();
      });
      req.on("error", (err: NodeJS.ErrnoException) => {
        // A reused keep-alive socket the upstream had closed never carried this request.
        const stale = req.reusedSocket && (err.code === "ECONNRESET" || err.code === "EPIPE");
        fail(
          new UpstreamError(
            "error",
            `${err.code ?? err.message} while ${connected ? "reading response header from" : "connecting to"} upstream`,
            !connected || stale,
          ),
        );
      });
      req.on("response", (res) => {
        if (settled) return;
        settled = true;
        clearTimeout(connectTimer);
        // The read timeout keeps running while the body streams, between two reads.
        resolve({
          status: res.statusCode ?? 502,
          headers: res.headers,
          body: new StreamBody(res),
          trailers: () =>
            Object.keys(res.trailers).length ? (res.trailers as Record<string, string>) : undefined,
        });
      });
      req.end(o.body);
    });
  }

  private session(o: AttemptOptions): http2.ClientHttp2Session {
    const key = `${o.protocol}|${o.endpoint.address}`;
    const existing = this.sessions.get(key);
    if (existing && !existing.closed && !existing.destroyed) return existing;
    const authority = `${o.protocol === "GRPCS" ? "https" : "http"}://${o.endpoint.address}`;
    const s = http2.connect(authority, { rejectUnauthorized: false });
    s.on("error", () => this.sessions.delete(key));
    s.on("close", () => this.sessions.delete(key));
    s.setTimeout(60_000, () => s.close());
    this.sessions.set(key, s);
    return s;
  }

  private attemptH2(o: AttemptOptions): Promise<UpstreamResponse> {
    return new Promise((resolve, reject) => {
      const s = this.session(o);
      let settled = false;
      const connectTimer = s.connecting
        ? setTimeout(
            () => done(new UpstreamError("timeout", "upstream timed out while connecting to upstream", true)),
            o.timeouts.connectSeconds * 1000,
          )
        : undefined;
      const done = (err: UpstreamError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(connectTimer);
        stream.close(http2.constants.NGHTTP2_CANCEL);
        reject(err);
      };
      const headers: http2.OutgoingHttpHeaders = {
        ...o.headers,
        ":method": o.method,
        ":path": o.target,
        ":scheme": o.protocol === "GRPCS" ? "https" : "http",
      };
      if (o.headers.host) headers[":authority"] = o.headers.host as string;
      // gRPC servers require `te: trailers`, the one TE value HTTP/2 allows.
      headers.te = "trailers";
      delete headers.host;
      const stream = s.request(headers, { endStream: false });
      let trailers: Record<string, string | string[]> | undefined;
      stream.on("trailers", (t) => {
        trailers = {};
        for (const [k, v] of Object.entries(t))
          if (!k.startsWith(":") && v !== undefined) trailers[k] = v as string | string[];
      });
      stream.setTimeout(o.timeouts.readSeconds * 1000, () =>
        done(
          new UpstreamError(
            "timeout",
            "upstream timed out while reading response header from upstream",
            false,
          ),
        ),
      );
      stream.on("error", (err: NodeJS.ErrnoException) =>
        done(new UpstreamError("error", `${err.code ?? err.message} from upstream`, s.connecting)),
      );
      stream.on("response", (h) => {
        if (settled) return;
        settled = true;
        clearTimeout(connectTimer);
        const out: IncomingHttpHeaders = {};
        for (const [k, v] of Object.entries(h)) if (!k.startsWith(":")) out[k] = v as string;
        resolve({
          status: Number(h[":status"] ?? 502),
          headers: out,
          body: new StreamBody(stream),
          trailers: () => trailers,
        });
      });
      stream.end(o.body);
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
    this.plain.close();
    for (const s of this.sessions.values()) s.destroy();
    this.sessions.clear();
  }
}
