/**
 * One upstream: a shared UDP socket (queries matched by a fresh id), TCP per query, failure
 * counting and the in-band health check CoreDNS runs after a failure.
 */
import { createSocket, type Socket } from "node:dgram";
import { connect } from "node:net";
import { randomInt } from "node:crypto";
import dnsPacket from "dns-packet";
import type { UpstreamAddress } from "./parse.ts";

export class UpstreamError extends Error {}

export class Proxy {
  readonly label: string;
  fails = 0;
  private udp?: Socket;
  private readonly pending = new Map<
    number,
    { resolve: (b: Buffer) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();
  private idleTimer?: NodeJS.Timeout;
  private checking = false;
  private closed = false;
  private localPort = 0;

  constructor(
    readonly addr: UpstreamAddress,
    private readonly opts: {
      expireMs: number;
      readTimeoutMs: number;
      healthCheckMs: number;
      healthCheckRecursionDesired: boolean;
      healthCheckDomain: string;
      maxFails: number;
    },
    private readonly onHealthFailure: () => void = () => {},
  ) {
    this.label = addr.host.includes(":") ? `[${addr.host}]:${addr.port}` : `${addr.host}:${addr.port}`;
  }

  down(): boolean {
    return this.opts.maxFails > 0 && this.fails >= this.opts.maxFails;
  }

  private socket(): Socket {
    if (this.udp) return this.udp;
    const s = createSocket(this.addr.host.includes(":") ? "udp6" : "udp4");
    s.on("message", (msg, rinfo) => {
      if (msg.length < 2 || rinfo.port !== this.addr.port) return;
      const p = this.pending.get(msg.readUInt16BE(0));
      if (!p) return;
      this.pending.delete(msg.readUInt16BE(0));
      clearTimeout(p.timer);
      p.resolve(msg);
    });
    s.on("error", (err) => {
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(err);
        this.pending.delete(id);
      }
    });
    s.on("listening", () => (this.localPort = s.address().port));
    s.bind();
    this.udp = s;
    return s;
  }

  /** Closes the cached socket once nothing used it for `expire`. */
  private touch(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.pending.size === 0 && this.udp) {
        const sock = this.udp;
        this.udp = undefined;
        try {
          sock.close();
        } catch {
          // already closed
        }
      } else this.touch();
    }, this.opts.expireMs);
    this.idleTimer.unref();
  }

  private freeId(): number {
    for (;;) {
      const id = randomInt(0, 65536);
      if (!this.pending.has(id)) return id;
    }
  }

  /** Sends a query (wire format) and returns the reply with the query's own id. */
  exchange(query: Buffer, proto: "udp" | "tcp"): Promise<Buffer> {
    if (this.closed) return Promise.reject(new UpstreamError("proxy closed"));
    return proto === "tcp" ? this.exchangeTcp(query) : this.exchangeUdp(query);
  }

  private exchangeUdp(query: Buffer): Promise<Buffer> {
    const sock = this.socket();
    this.touch();
    const id = this.freeId();
    const originalId = query.readUInt16BE(0);
    const out = Buffer.from(query);
    out.writeUInt16BE(id, 0);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new UpstreamError(`read udp 127.0.0.1:${this.localPort}->${this.label}: i/o timeout`));
      }, this.opts.readTimeoutMs);
      this.pending.set(id, {
        resolve: (b) => {
          const copy = Buffer.from(b);
          copy.writeUInt16BE(originalId, 0);
          resolve(copy);
        },
        reject,
        timer,
      });
      try {
        sock.send(out, this.addr.port, this.addr.host, (err) => {
          if (err) {
            clearTimeout(timer);
            this.pending.delete(id);
            reject(new UpstreamError(`write udp ${this.label}: ${err.message}`));
          }
        });
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new UpstreamError(`write udp ${this.label}: ${(err as Error).message}`));
      }
    });
  }

  private exchangeTcp(query: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const sock = connect({ host: this.addr.host, port: this.addr.port });
      let buf = Buffer.alloc(0);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(
          new UpstreamError(
            `read tcp ${sock.localAddress ?? "127.0.0.1"}:${sock.localPort ?? 0}->${this.label}: i/o timeout`,
          ),
        );
      }, this.opts.readTimeoutMs);
      sock.on("connect", () => {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(query.length);
        sock.write(Buffer.concat([len, query]));
      });
      sock.on("data", (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          clearTimeout(timer);
          sock.destroy();
          resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        }
      });
      sock.on("error", (err) => {
        clearTimeout(timer);
        reject(new UpstreamError(`dial tcp ${this.label}: ${err.message}`));
      });
      sock.on("close", () => {
        clearTimeout(timer);
        reject(new UpstreamError(`read tcp ${this.label}: connection closed`));
      });
    });
  }

  /** After a failure: probe `. IN NS` every health_check interval until any reply comes back. */
  startHealthCheck(): void {
    if (this.checking || this.closed || this.opts.healthCheckMs === 0) return;
    this.checking = true;
    const probe = dnsPacket.encode({
      id: 0,
      type: "query",
      flags: this.opts.healthCheckRecursionDesired ? 0x100 : 0,
      questions: [{ name: this.opts.healthCheckDomain.replace(/\.$/, "") || ".", type: "NS", class: "IN" }],
    });
    const loop = async () => {
      while (!this.closed) {
        try {
          await this.exchangeUdp(probe);
          this.fails = 0;
          break;
        } catch {
          this.fails++;
          this.onHealthFailure();
        }
        await new Promise((r) => setTimeout(r, this.opts.healthCheckMs).unref());
      }
      this.checking = false;
    };
    void loop();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.idleTimer);
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new UpstreamError("proxy closed"));
    }
    this.pending.clear();
    try {
      this.udp?.close();
    } catch {
      // already closed
    }
    this.udp = undefined;
  }
}
