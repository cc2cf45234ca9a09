/**
 * The data plane: HTTP and HTTPS (HTTP/1.1 and HTTP/2 by ALPN, certificates by SNI) listeners that
 * route every request through the current RouteTable and proxy it. A new table is swapped in
 * with one assignment: requests in flight finish on the table they started with and keep-alive
 * connections stay open.
 */
import http, { type OutgoingHttpHeaders } from "node:http";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import { constants as cryptoConstants, randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { RouteTable } from "../model.ts";
import { route, type Decision } from "../route.ts";
import { selectCertificate, type CertificateMaterial } from "../tls.ts";
import { plainAddress } from "../annotations/whitelist-source-range.ts";
import { setCookieHeader } from "../annotations/affinity.ts";
import { tooLarge } from "../annotations/proxy-body-size.ts";
import { formatAccessLog, basicUser, timeLocalNow, type UpstreamAttempt } from "./access-log.ts";
import { Balancer, RateLimiter } from "./balancer.ts";
import { H1Connection, H1Request, H1Response, type H1Options, type RequestBody } from "./h1-connection.ts";
import type { InvalidHead } from "./request-head.ts";
import type { IngressMetrics, RequestLabels } from "./metrics.ts";
import { reason, rawResponse, statusPage } from "./pages.ts";
import { UpstreamError, UpstreamPool, type UpstreamResponse } from "./proxy.ts";
import { RenewingSessionTickets } from "./session-tickets.ts";

export interface IngressServerOptions {
  table: RouteTable;
  logger: Logger;
  metrics: IngressMetrics;
  /** where access log lines go (ingress-nginx: stdout); null turns the access log off */
  accessLog: { write(line: string): unknown } | null;
  httpPort: number;
  httpsPort: number;
  /** listen address; default 0.0.0.0 */
  address?: string;
  /** TLS session resumption (default on, see the TLS listener); off: every connection a full handshake */
  sessionResumption?: boolean;
}

type AnyRequest = H1Request | http2.Http2ServerRequest;
type AnyResponse = H1Response | http2.Http2ServerResponse;

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
  "proxy",
]);
const PROXY_TRIES = 3;
/** proxy_hide_header's defaults: nginx sends its own Date and Server. */
const PROXY_HIDDEN = new Set([
  "date",
  "server",
  "x-pad",
  "x-accel-expires",
  "x-accel-redirect",
  "x-accel-limit-rate",
  "x-accel-buffering",
  "x-accel-charset",
]);
/** TLS errors of bytes that were no TLS record: HTTP, a proxy's CONNECT, anything else. */
const PLAIN_ON_TLS_PORT = new Set([
  "ERR_SSL_HTTP_REQUEST",
  "ERR_SSL_HTTPS_PROXY_REQUEST",
  "ERR_SSL_WRONG_VERSION_NUMBER",
]);
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);
const HSTS = "max-age=31536000; includeSubDomains";
const HSTS_PREFIX = "strict-transport-security";

function header(req: AnyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(", ") : v;
}

/** `$request_id`: 32 hex characters, drawn from a pool to spare a syscall per request. */
let idPool = Buffer.alloc(0);
let idOffset = 0;
function newRequestId(): string {
  if (idOffset + 16 > idPool.length) {
    idPool = randomBytes(4096);
    idOffset = 0;
  }
  idOffset += 16;
  return idPool.toString("hex", idOffset - 16, idOffset);
}

function requestLength(req: AnyRequest, bodyBytes: number): number {
  let n = req.method!.length + 1 + (req.url?.length ?? 0) + 1 + 8 + 2 + 2;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) n += raw[i].length + 2 + raw[i + 1].length + 2;
  return n + bodyBytes;
}

export class IngressServer {
  private table: RouteTable;
  private readonly log: Logger;
  private readonly balancer = new Balancer();
  private readonly limiter = new RateLimiter();
  private readonly pool = new UpstreamPool();
  private readonly contexts = new Map<string, tls.SecureContext>();
  private readonly h1: H1Options = {
    request: (req, res) => this.onRequest(req, res),
    upgrade: (req, socket, head) => this.onUpgrade(req, socket, head),
    rejected: (socket, bad, bytesRead, bytesSent) => this.onRejected(socket, bad, bytesRead, bytesSent),
    // keepalive_requests
    maxRequests: 1000,
    draining: () => this.stopping,
  };
  private readonly h1Connections = new Set<H1Connection>();
  private readonly h2 = http2.createServer({ maxSessionMemory: 64 });
  private readonly tlsServer: tls.Server;
  private readonly sockets = new Set<net.Socket>();
  private inFlight = 0;
  private readonly labels: RequestLabels = {
    ingress: "",
    namespace: "",
    service: "",
    status: 0,
    method: "",
    host: "",
    path: "",
    canary: "",
  };
  private stopping = false;
  readonly ports = { http: 0, https: 0 };

  constructor(private readonly opts: IngressServerOptions) {
    this.table = opts.table;
    this.log = opts.logger;
    this.h2.on("request", (req, res) => this.onRequest(req, res));
    this.h2.on("sessionError", () => undefined);
    this.h2.on("session", (s) => {
      s.on("error", () => undefined);
      // keepalive_timeout 75s closes idle HTTP/2 connections too.
      s.setTimeout(75_000, () => s.close());
    });

    const def = this.table.defaultCertificate;
    this.tlsServer = tls.createServer({
      key: def.keyPem,
      cert: def.certPem,
      minVersion: "TLSv1.2",
      // client_header_timeout: a connection that never finishes its handshake is closed after 60 s.
      handshakeTimeout: 60_000,
      noDelay: true,
      ALPNProtocols: ["h2", "http/1.1"],
      // ingress-nginx resumes sessions for 10 minutes (ssl_session_cache shared:SSL:10m,
      // ssl_session_timeout 10m, ssl_session_tickets off): its OpenSSL then resumes TLS 1.3 clients
      // with stateful tickets. Node passes 'resumeSession' only a TLS 1.2 session ID, so session
      // tickets are the one way a Node server resumes TLS 1.3; with SSL_OP_NO_TICKET every
      // reconnecting client paid a full RSA handshake that nginx skips. The ticket key is this
      // listener's own random key, held in memory only; tickets expire after sessionTimeout. A
      // session is not bound to the SNI name (the SNI certificate is copied into the connection):
      // RFC 8446 4.6.1 has clients resume only names the original certificate covers.
      sessionTimeout: 600,
      secureOptions: opts.sessionResumption === false ? cryptoConstants.SSL_OP_NO_TICKET : 0,
      SNICallback: (servername, cb) => {
        try {
          cb(
            null,
            this.contextFor(
              selectCertificate(this.table.certificates, this.table.defaultCertificate, servername),
            ),
          );
        } catch (err) {
          cb(err as Error);
        }
      },
    });
    if (opts.sessionResumption !== false) {
      // Tickets renewed on each resumption (session-tickets.ts). OpenSSL issues and reads them with
      // the context a connection started on, whatever certificate SNI picks later: tls.Server's
      // own context, _sharedCreds.
      const own = (this.tlsServer as unknown as { _sharedCreds?: tls.SecureContext })._sharedCreds;
      if (own) new RenewingSessionTickets().enable(own);
    }
    this.tlsServer.on("secureConnection", (socket: tls.TLSSocket) => {
      if (socket.alpnProtocol === "h2") this.h2.emit("connection", socket);
      else this.serveH1(socket);
    });
    this.tlsServer.on("connection", (raw: net.Socket) => this.track(raw));
    this.tlsServer.on("tlsClientError", (err: NodeJS.ErrnoException, socket) => {
      // nginx answers plain HTTP on the TLS port with a 400 page instead of a handshake failure.
      // OpenSSL recognised it (or a record that is no TLS at all): the page goes out in the clear,
      // on the TCP socket under the TLS one. (Reading the first byte in a front server of our own
      // before handing the socket to TLS cost ~120 µs per connection.)
      const raw =
        err.code !== undefined && PLAIN_ON_TLS_PORT.has(err.code) ? this.tcpUnder(socket) : undefined;
      if (raw?.writable) {
        raw.end(rawResponse(400, "400 The plain HTTP request was sent to HTTPS port"));
        return;
      }
      this.log.debug({ err: err.message, client: socket.remoteAddress }, "TLS handshake failed");
      socket.destroy();
    });
  }

  /** The accepted TCP socket a TLS socket runs on (a failed handshake reports only the TLS one). */
  private tcpUnder(tlsSocket: net.Socket): net.Socket | undefined {
    for (const s of this.sockets)
      if (
        s !== tlsSocket &&
        s.remotePort === tlsSocket.remotePort &&
        s.remoteAddress === tlsSocket.remoteAddress &&
        s.localPort === tlsSocket.localPort
      )
        return s;
    return undefined;
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
  }

  private serveH1(socket: net.Socket): void {
    const conn = new H1Connection(socket, this.h1);
    this.h1Connections.add(conn);
    socket.once("close", () => this.h1Connections.delete(conn));
  }

  private contextFor(m: CertificateMaterial): tls.SecureContext {
    const key = m.cert.fingerprint256;
    let ctx = this.contexts.get(key);
    if (!ctx) {
      ctx = tls.createSecureContext({ key: m.keyPem, cert: m.certPem });
      if (this.contexts.size > 1000) this.contexts.clear();
      this.contexts.set(key, ctx);
    }
    return ctx;
  }

  /** Swap the table: one assignment, nothing restarts. */
  setTable(table: RouteTable): void {
    this.table = table;
    this.opts.metrics.configApplied();
  }

  get currentTable(): RouteTable {
    return this.table;
  }

  async start(): Promise<{ http: number; https: number }> {
    const address = this.opts.address ?? "0.0.0.0";
    const httpListener = net.createServer({ noDelay: true }, (socket) => {
      this.track(socket);
      this.serveH1(socket);
    });
    this.httpListener = httpListener;
    await new Promise<void>((resolve, reject) => {
      httpListener.once("error", reject);
      httpListener.listen(this.opts.httpPort, address, () => resolve());
    });
    await new Promise<void>((resolve, reject) => {
      this.tlsServer.once("error", reject);
      this.tlsServer.listen(this.opts.httpsPort, address, () => resolve());
    });
    this.ports.http = (httpListener.address() as net.AddressInfo).port;
    this.ports.https = (this.tlsServer.address() as net.AddressInfo).port;
    this.opts.metrics.configApplied();
    return { ...this.ports };
  }

  private httpListener?: net.Server;

  /** Stop accepting, let requests in flight finish (up to graceMs), then close everything. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    this.httpListener?.close();
    this.tlsServer.close();
    for (const conn of this.h1Connections) conn.closeIfIdle();
    const deadline = Date.now() + graceMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const s of this.sockets) s.destroy();
    this.pool.close();
  }

  // ---------------------------------------------------------------- requests

  /** A head nginx would not serve was answered with its page: log it as nginx does. */
  private onRejected(socket: net.Socket, bad: InvalidHead, bytesRead: number, bytesSent: number): void {
    this.log.debug({ reason: bad.reason, status: bad.status }, "bad request answered");
    if (!this.opts.accessLog) return;
    this.opts.accessLog.write(
      formatAccessLog({
        remoteAddr: plainAddress(socket.remoteAddress ?? "-"),
        time: timeLocalNow(),
        request: bad.requestLine,
        status: bad.status,
        bodyBytesSent: bytesSent,
        requestLength: bytesRead,
        requestTime: 0,
        upstreamName: "",
        attempts: [],
        requestId: newRequestId(),
      }) + "\n",
    );
  }

  private decide(req: AnyRequest, scheme: "http" | "https", remoteAddr: string): Decision {
    const cl = header(req, "content-length");
    return route(this.table, {
      method: req.method ?? "GET",
      host: header(req, "host") ?? header(req, ":authority"),
      target: req.url ?? "/",
      headers: req.headers,
      scheme,
      remoteAddr,
      random: Math.random(),
      contentLength: cl !== undefined && /^\d+$/.test(cl) ? Number(cl) : undefined,
    });
  }

  private onRequest(req: AnyRequest, res: AnyResponse): void {
    this.inFlight++;
    const started = performance.now();
    // While draining, finish this request and let the client reconnect elsewhere.
    if (this.stopping && res instanceof H1Response) res.shouldKeepAlive = false;
    const scheme = (req.socket as tls.TLSSocket).encrypted ? "https" : "http";
    const remoteAddr = plainAddress(req.socket.remoteAddress ?? "");
    let decision: Decision;
    try {
      decision = this.decide(req, scheme, remoteAddr);
    } catch (err) {
      this.log.error({ err }, "routing failed");
      this.sendStatus(req, res, 500, false);
      this.finish(req, res, started, 500, undefined, [], "");
      return;
    }
    const requestId = header(req, "x-request-id") || newRequestId();
    if (
      decision.rateLimit &&
      !this.limiter.admit(`${decision.rateLimit.key}|${remoteAddr}`, decision.rateLimit.limit)
    ) {
      this.sendStatus(req, res, 503, decision.hsts);
      this.finish(req, res, started, 503, decision, [], requestId);
      return;
    }
    if (decision.kind === "respond") {
      this.sendStatus(req, res, decision.status, decision.hsts);
      this.finish(req, res, started, decision.status, decision, [], requestId);
      return;
    }
    if (decision.kind === "redirect") {
      this.sendStatus(req, res, decision.status, decision.hsts, { location: decision.url });
      this.finish(req, res, started, decision.status, decision, [], requestId);
      return;
    }
    this.proxy(req, res, decision, scheme, requestId, remoteAddr, started).catch((err) => {
      this.log.error({ err }, "proxy failed");
      if (!res.headersSent) this.sendStatus(req, res, 500, false);
      else res.destroy();
    });
  }

  private sendStatus(
    req: AnyRequest,
    res: AnyResponse,
    status: number,
    hsts: boolean,
    extra: OutgoingHttpHeaders = {},
  ): void {
    const body = statusPage(status);
    const headers: OutgoingHttpHeaders = {
      "content-type": "text/html",
      "content-length": Buffer.byteLength(body),
      ...extra,
    };
    if (hsts) headers[HSTS_PREFIX] = HSTS;
    if (res instanceof H1Response) res.writeHead(status, reason(status), headers);
    else res.writeHead(status, headers);
    // A request body the client is still sending is read and dropped, so keep-alive survives.
    if (!req.complete) req.resume();
    if (req.method === "HEAD") res.end();
    else res.end(body);
  }

  private readBody(req: AnyRequest, limit: number): Promise<RequestBody> {
    if (req instanceof H1Request) return req.readBody(limit);
    if (req.method === "GET" || req.method === "HEAD") {
      if (req.complete || header(req, "content-length") === undefined) {
        if (!req.complete) req.resume();
        return Promise.resolve(undefined);
      }
    }
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const onData = (c: Buffer): void => {
        size += c.length;
        if (tooLarge(limit, size)) {
          req.off("data", onData);
          req.resume();
          resolve("too-large");
          return;
        }
        chunks.push(c);
      };
      req.on("data", onData);
      req.once("end", () => resolve(size ? Buffer.concat(chunks) : undefined));
      req.once("error", reject);
      // A stream reset before its end: nothing more will come (after "end" this changes nothing).
      req.once("close", () => resolve("unreadable"));
    });
  }

  private upstreamHeaders(
    req: AnyRequest,
    scheme: string,
    requestId: string,
    remoteAddr: string,
  ): OutgoingHttpHeaders {
    const out: OutgoingHttpHeaders = {};
    const incoming = req.headers;
    for (const k in incoming) {
      const v = incoming[k];
      if (v === undefined || k.charCodeAt(0) === 58 /* ":" */ || HOP_BY_HOP.has(k)) continue;
      out[k] = v;
    }
    const host = header(req, "host") ?? header(req, ":authority") ?? "";
    const originalXff = header(req, "x-forwarded-for");
    const port = String(req.socket.localPort ?? (scheme === "https" ? 443 : 80));
    out.host = host;
    out["x-request-id"] = requestId;
    out["x-real-ip"] = remoteAddr;
    out["x-forwarded-for"] = remoteAddr;
    if (originalXff !== undefined) out["x-original-forwarded-for"] = originalXff;
    out["x-forwarded-host"] = host;
    out["x-forwarded-port"] = port;
    out["x-forwarded-proto"] = scheme;
    out["x-forwarded-scheme"] = scheme;
    out["x-scheme"] = scheme;
    return out;
  }

  private async proxy(
    req: AnyRequest,
    res: AnyResponse,
    d: Extract<Decision, { kind: "proxy" }>,
    scheme: "http" | "https",
    requestId: string,
    remoteAddr: string,
    started: number,
  ): Promise<void> {
    const a = d.location.annotations;
    const body = await this.readBody(req, a.proxyBodySize);
    if (body === "too-large") {
      this.sendStatus(req, res, 413, d.hsts);
      this.finish(req, res, started, 413, d, [], requestId);
      return;
    }
    // Nothing goes upstream without its whole body: a broken one is a 400, a client that left
    // is nginx's 499 (logged, nothing sent).
    if (body === "unreadable") {
      const status = (res instanceof H1Response ? res.destroyed : res.stream.destroyed) ? 499 : 400;
      if (status === 400) this.sendStatus(req, res, 400, d.hsts);
      this.finish(req, res, started, status, d, [], requestId);
      return;
    }
    const headers = this.upstreamHeaders(req, scheme, requestId, remoteAddr);
    const attempts: UpstreamAttempt[] = [];
    const tried = new Set<string>();
    const idempotent = IDEMPOTENT.has(req.method ?? "");
    let setCookie: string | undefined;
    let response: UpstreamResponse | undefined;
    let lastError: UpstreamError | undefined;
    let attemptStart = 0;
    for (let i = 0; i < PROXY_TRIES && !response; i++) {
      let endpoint;
      if (d.affinity) {
        const pick = this.balancer.sticky(d.upstream, d.affinity.key, tried);
        endpoint = pick.endpoint;
        if (pick.cookieValue)
          setCookie = setCookieHeader(d.affinity.config, pick.cookieValue, {
            path: d.affinity.cookiePath,
            secure: scheme === "https",
            nowMs: Date.now(),
          });
      } else endpoint = this.balancer.next(d.upstream);
      tried.add(endpoint.address);
      attemptStart = performance.now();
      try {
        response = await this.pool.attempt({
          endpoint,
          protocol: a.backendProtocol,
          method: req.method ?? "GET",
          target: d.upstreamTarget,
          headers,
          body,
          timeouts: a.timeouts,
        });
        attempts.push({
          addr: endpoint.address,
          responseTime: (performance.now() - attemptStart) / 1000,
          status: response.status,
        });
      } catch (err) {
        if (!(err instanceof UpstreamError)) throw err;
        lastError = err;
        attempts.push({
          addr: endpoint.address,
          responseTime: (performance.now() - attemptStart) / 1000,
          status: err.kind === "timeout" ? 504 : 502,
        });
        this.log.warn(
          { upstream: d.upstream.name, endpoint: endpoint.address, err: err.message, requestId },
          "upstream attempt failed",
        );
        if (!err.safeToRetry && !idempotent) break;
        if (res.destroyed || req.socket?.destroyed) break;
      }
    }
    if (!response) {
      const status = lastError?.kind === "timeout" ? 504 : 502;
      if (!res.destroyed) this.sendStatus(req, res, status, d.hsts);
      this.finish(req, res, started, status, d, attempts, requestId);
      return;
    }
    const upstreamBody = response.body;
    const status = response.status;
    const out: OutgoingHttpHeaders = {};
    const upstreamHeaders = response.headers;
    for (const k in upstreamHeaders) {
      const v = upstreamHeaders[k];
      if (v === undefined || PROXY_HIDDEN.has(k) || HOP_BY_HOP.has(k)) continue;
      out[k] = v;
    }
    // A body that has already arrived whole goes out with the head in one write, and with its length.
    const whole = upstreamBody.complete();
    if (
      whole !== undefined &&
      out["content-length"] === undefined &&
      req.method !== "HEAD" &&
      status !== 204 &&
      status !== 304
    )
      out["content-length"] = whole.length;
    if (d.hsts && out[HSTS_PREFIX] === undefined) out[HSTS_PREFIX] = HSTS;
    if (setCookie) {
      const existing = out["set-cookie"];
      out["set-cookie"] =
        existing === undefined
          ? [setCookie]
          : [...(Array.isArray(existing) ? existing : [String(existing)]), setCookie];
    }
    const last = attempts[attempts.length - 1];
    try {
      if (res instanceof H1Response) {
        const text = reason(status);
        res.writeHead(status, text === "Unknown" ? undefined : text, out);
      } else res.writeHead(status, out);
    } catch (err) {
      upstreamBody.destroy();
      this.log.warn(
        { err: (err as Error).message, upstream: d.upstream.name },
        "upstream sent headers that cannot be forwarded",
      );
      res.destroy();
      this.finish(req, res, started, 502, d, attempts, requestId);
      return;
    }
    if (whole !== undefined) {
      last.responseLength = whole.length;
      last.responseTime = (performance.now() - attemptStart) / 1000;
      res.end(whole);
      this.finish(req, res, started, status, d, attempts, requestId);
      return;
    }
    let bodyBytes = 0;
    const trailersOf = response.trailers;
    const w = res as H1Response;
    const onDrain = (): void => upstreamBody.resume();
    upstreamBody.pipe({
      data: (c) => {
        bodyBytes += c.length;
        if (w.write(c)) return true;
        w.once("drain", onDrain);
        return false;
      },
      end: () => {
        last.responseLength = bodyBytes;
        last.responseTime = (performance.now() - attemptStart) / 1000;
        const t = trailersOf();
        if (t && req.httpVersionMajor >= 2)
          (res as http2.Http2ServerResponse).addTrailers(t as OutgoingHttpHeaders);
        res.end();
      },
      error: () => {
        last.responseLength = bodyBytes;
        last.responseTime = (performance.now() - attemptStart) / 1000;
        res.destroy();
      },
    });
    res.once("close", () => {
      if (last.responseLength === undefined) {
        last.responseLength = bodyBytes;
        last.responseTime = (performance.now() - attemptStart) / 1000;
      }
      upstreamBody.destroy();
    });
    // The client left while the upstream was answering: stop reading, free the connection.
    if (res.destroyed) upstreamBody.destroy();
    this.finish(req, res, started, status, d, attempts, requestId);
  }

  private finish(
    req: AnyRequest,
    res: AnyResponse,
    started: number,
    status: number,
    d: Decision | undefined,
    attempts: UpstreamAttempt[],
    requestId: string,
    alreadyClosed = false,
  ): void {
    // An HTTP/2 request forgets its peer once the stream closes: read $remote_addr now.
    const remoteAddr = plainAddress(req.socket?.remoteAddress ?? "-");
    if (alreadyClosed || res.writableFinished || res.destroyed)
      this.logRequest(req, res, started, status, d, attempts, requestId, remoteAddr);
    else
      res.once("close", () => this.logRequest(req, res, started, status, d, attempts, requestId, remoteAddr));
  }

  /** Access log line and metrics, once per request, when its response is done. */
  private logRequest(
    req: AnyRequest,
    res: AnyResponse,
    started: number,
    status: number,
    d: Decision | undefined,
    attempts: UpstreamAttempt[],
    requestId: string,
    remoteAddr: string,
  ): void {
    this.inFlight--;
    const seconds = (performance.now() - started) / 1000;
    const bytes = (res as { bytesWritten?: number }).bytesWritten;
    const bodyBytes =
      attempts.length && attempts[attempts.length - 1].responseLength !== undefined && d?.kind === "proxy"
        ? attempts[attempts.length - 1].responseLength!
        : Number(res.getHeader?.("content-length") ?? bytes ?? 0);
    const upstreamName = d?.upstreamName ?? "";
    const ingress = d?.location?.ingress;
    // One label object for every request: observeRequest reads it and keeps nothing.
    const l = this.labels;
    l.ingress = ingress?.name ?? "";
    l.namespace = ingress?.namespace ?? "";
    l.service = d?.kind === "proxy" ? (d.upstream.service ?? "") : (d?.location?.upstream.service ?? "");
    l.status = status;
    l.method = req.method ?? "";
    l.host = d?.server.hostname ?? "";
    l.path = d?.location?.source.path ?? "";
    l.canary = d?.kind === "proxy" ? (d.alternativeUpstreamName ?? "") : "";
    this.opts.metrics.observeRequest(l, seconds, bodyBytes);
    // ingress-nginx does not log the default backend (enable-access-log-for-default-backend: false).
    if (!this.opts.accessLog || upstreamName === "upstream-default-backend") return;
    this.opts.accessLog.write(
      formatAccessLog({
        remoteAddr,
        remoteUser: basicUser(header(req, "authorization")),
        time: timeLocalNow(),
        request: `${req.method} ${req.url} HTTP/${req.httpVersion}`,
        status,
        bodyBytesSent: bodyBytes,
        referer: header(req, "referer"),
        userAgent: header(req, "user-agent"),
        requestLength: requestLength(req, Number(header(req, "content-length") ?? 0)),
        requestTime: seconds,
        upstreamName,
        alternativeUpstreamName: d?.kind === "proxy" ? d.alternativeUpstreamName : undefined,
        attempts,
        requestId,
      }) + "\n",
    );
  }

  // ---------------------------------------------------------------- WebSocket

  private onUpgrade(req: H1Request, socket: net.Socket, head: Buffer): void {
    socket.on("error", () => socket.destroy());
    const scheme = (req.socket as tls.TLSSocket).encrypted ? "https" : "http";
    const remoteAddr = plainAddress(req.socket.remoteAddress ?? "");
    const d = this.decide(req, scheme, remoteAddr);
    const requestId = header(req, "x-request-id") || newRequestId();
    if (d.rateLimit && !this.limiter.admit(`${d.rateLimit.key}|${remoteAddr}`, d.rateLimit.limit)) {
      socket.end(rawResponse(503));
      return;
    }
    if (d.kind === "redirect") {
      socket.end(rawResponse(d.status, undefined, [`Location: ${d.url}`]));
      return;
    }
    if (d.kind !== "proxy") {
      socket.end(rawResponse(d.status));
      return;
    }
    const headers = this.upstreamHeaders(req, scheme, requestId, remoteAddr);
    headers.connection = "upgrade";
    headers.upgrade = header(req, "upgrade") ?? "websocket";
    const endpoint = this.balancer.next(d.upstream);
    const upstreamReq = http.request({
      host: endpoint.ip,
      port: endpoint.port,
      method: req.method,
      path: d.upstreamTarget,
      headers,
      setHost: false,
    });
    const idleMs = d.location.annotations.timeouts.readSeconds * 1000;
    const connectTimer = setTimeout(
      () => upstreamReq.destroy(new Error("connect timeout")),
      d.location.annotations.timeouts.connectSeconds * 1000,
    );
    upstreamReq.on("socket", (s) => s.once("connect", () => clearTimeout(connectTimer)));
    upstreamReq.on("error", (err) => {
      clearTimeout(connectTimer);
      this.log.warn(
        { upstream: d.upstream.name, endpoint: endpoint.address, err: err.message },
        "WebSocket upstream failed",
      );
      if (socket.writable) socket.end(rawResponse(/timeout/.test(err.message) ? 504 : 502));
    });
    upstreamReq.on("response", (res) => {
      // The upstream refused the upgrade: pass its answer through.
      clearTimeout(connectTimer);
      let headText = `HTTP/1.1 ${res.statusCode} ${res.statusMessage}\r\n`;
      for (let i = 0; i < res.rawHeaders.length; i += 2)
        if (res.rawHeaders[i].toLowerCase() !== "server")
          headText += `${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}\r\n`;
      socket.write(headText + "\r\n");
      res.pipe(socket);
    });
    upstreamReq.on("upgrade", (res, upstreamSocket, upstreamHead) => {
      clearTimeout(connectTimer);
      let headText = `HTTP/1.1 101 Switching Protocols\r\n`;
      for (let i = 0; i < res.rawHeaders.length; i += 2)
        if (res.rawHeaders[i].toLowerCase() !== "server")
          headText += `${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}\r\n`;
      socket.write(headText + "\r\n");
      if (upstreamHead.length) socket.write(upstreamHead);
      if (head.length) upstreamSocket.write(head);
      // proxy-read-timeout closes an idle WebSocket, as nginx does.
      upstreamSocket.setTimeout(idleMs, () => {
        upstreamSocket.destroy();
        socket.destroy();
      });
      upstreamSocket.on("error", () => socket.destroy());
      upstreamSocket.on("close", () => socket.destroy());
      socket.on("close", () => upstreamSocket.destroy());
      upstreamSocket.pipe(socket);
      socket.pipe(upstreamSocket);
      if (this.opts.accessLog)
        this.opts.accessLog.write(
          formatAccessLog({
            remoteAddr,
            time: timeLocalNow(),
            request: `${req.method} ${req.url} HTTP/${req.httpVersion}`,
            status: 101,
            bodyBytesSent: 0,
            referer: header(req, "referer"),
            userAgent: header(req, "user-agent"),
            requestLength: requestLength(req, 0),
            requestTime: 0,
            upstreamName: d.upstreamName,
            alternativeUpstreamName: d.alternativeUpstreamName,
            attempts: [{ addr: endpoint.address, responseTime: 0, status: 101, responseLength: 0 }],
            requestId,
          }) + "\n",
        );
    });
    upstreamReq.end();
  }
}
