/**
 * The server: turns a Corefile into listeners (one per address and port, UDP and TCP) and plugin
 * chains (one per server block), routes each query to the block with the longest matching zone,
 * and swaps in a new configuration on reload without closing the sockets that stay.
 */
import { createSocket, type Socket } from "node:dgram";
import { createServer, type Server as TcpServer, type Socket as TcpSocket } from "node:net";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { networkInterfaces } from "node:os";
import dnsPacket, { type RecordType } from "dns-packet";
import pino, { type Logger } from "pino";
import { parseCorefile, type ServerBlock } from "./corefile/parse.ts";
import { CorefileError } from "./corefile/lexer.ts";
import { KeyError, parseKey } from "./corefile/keys.ts";
import {
  DnsError,
  Rcode,
  findVariant,
  reply,
  setRcode,
  type Handler,
  type Message,
  type Plugin,
  type Request,
} from "./message.ts";
import { createMetrics, COREDNS_VERSION, type Metrics } from "./metrics.ts";
import { HttpHub, HttpStage } from "./http.ts";
import { KNOWN_PLUGINS, PLUGIN_ORDER } from "./plugins/order.ts";
import type { Runtime, SetupContext } from "./setup.ts";
import { decodeQuery, encodeReply } from "./transport.ts";
import type { ClusterSourceFactory } from "./kubernetes/source.ts";
import { InformerSource } from "./kubernetes/informers.ts";

export interface ServerOptions {
  /** Path of the Corefile (imports are relative to it; reload re-reads it). */
  corefilePath: string;
  /** The Corefile text; read from corefilePath when omitted. */
  corefile?: string;
  /** Port for keys without one (coredns -dns.port). */
  defaultPort?: number;
  /** Address to listen on when a block has no `bind`. */
  defaultHost?: string;
  logger?: Logger;
  out?: (line: string) => void;
  fatal?: (message: string) => void;
  clusterSources?: ClusterSourceFactory;
  /** In-cluster credentials directory (default /var/run/secrets/kubernetes.io/serviceaccount). */
  serviceAccountDir?: string;
  localIPs?: () => string[];
  env?: Record<string, string | undefined>;
}

interface Route {
  zone: string;
  handler: Handler;
  server: string;
}

interface Instance {
  plugins: Plugin[];
  startups: (() => Promise<void> | void)[];
  serving: (() => Promise<void> | void)[];
  shutdowns: (() => Promise<void> | void)[];
  readies: Map<string, () => boolean>;
  lameduckMs: number;
  routes: { host: string; port: number; zone: string; handler: Handler; server: string }[];
}

interface Listener {
  host: string;
  configuredPort: number;
  port: number;
  udp: Socket;
  tcp: TcpServer;
  connections: Set<TcpSocket>;
  routes: Route[];
  closed: boolean;
}

export class DnsServer {
  readonly metrics: Metrics;
  readonly logger: Logger;
  private readonly http = new HttpHub();
  private listeners = new Map<string, Listener>();
  private instances: Instance[] = [];
  private readonly runtime: Runtime;
  private reloading?: Promise<void>;
  private stopped = false;
  /** SHA512 of the running configuration (Corefile and imports). */
  configHash = "";

  private constructor(private readonly options: ServerOptions) {
    this.metrics = createMetrics();
    this.logger = options.logger ?? pino({ name: "coredns" });
    const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
    this.runtime = {
      metrics: this.metrics,
      logger: this.logger,
      out,
      fatal:
        options.fatal ??
        ((message) => {
          out(`[FATAL] ${message}`);
          process.exit(1);
        }),
      reload: () => this.reload(),
      corefilePath: options.corefilePath,
      serviceAccountDir: options.serviceAccountDir,
      clusterSources: options.clusterSources ?? ((o) => new InformerSource(o)),
      localIPs: options.localIPs ?? defaultLocalIPs,
      readiness: () => this.isReady(),
      configHash: () => this.configHash,
      corefileHash: () => {
        const text = readFileSync(options.corefilePath, "utf8");
        try {
          return this.hashOf(text);
        } catch {
          return createHash("sha512").update(text).digest("hex");
        }
      },
    };
  }

  static async start(options: ServerOptions): Promise<DnsServer> {
    const server = new DnsServer(options);
    const text = options.corefile ?? readFileSync(options.corefilePath, "utf8");
    await server.load(text);
    return server;
  }

  /** The port a listener actually bound (useful when the Corefile says port 0). */
  port(configuredPort?: number): number {
    for (const l of this.listeners.values())
      if (configuredPort === undefined || l.configuredPort === configuredPort) return l.port;
    throw new Error(`no listener for port ${configuredPort}`);
  }

  httpPort(address: string): number | undefined {
    return this.http.port(address);
  }

  /** Re-reads the Corefile; a bad one is logged and the running configuration stays. */
  async reload(): Promise<void> {
    if (this.reloading) return this.reloading;
    this.reloading = (async () => {
      try {
        const text = readFileSync(this.options.corefilePath, "utf8");
        await this.load(text);
      } catch (err) {
        this.metrics.reloadFailed.inc();
        throw err;
      } finally {
        this.reloading = undefined;
      }
    })();
    return this.reloading;
  }

  /** The SHA512 a Corefile text (with its imports) would run under, for the reload plugin's comparison. */
  hashOf(text: string): string {
    const parsed = parseCorefile(text, this.options.corefilePath, { env: this.options.env });
    return hashFiles(text, parsed.files.slice(1));
  }

  async load(text: string): Promise<void> {
    const parsed = parseCorefile(text, this.options.corefilePath, { env: this.options.env });
    const hash = hashFiles(text, parsed.files.slice(1));
    const stage = new HttpStage();
    const instances: Instance[] = [];
    const seen = new Map<string, string>();
    try {
      for (const block of parsed.blocks) instances.push(this.buildInstance(block, stage, seen));
    } catch (err) {
      for (const inst of instances) await runAll(inst.shutdowns);
      throw err;
    }
    // Open new sockets before anything changes, so a failure leaves the running config intact.
    const wanted = new Map<string, { host: string; port: number }>();
    for (const inst of instances)
      for (const r of inst.routes) wanted.set(`${r.host}|${r.port}`, { host: r.host, port: r.port });
    const opened: Listener[] = [];
    try {
      for (const [key, w] of wanted) {
        if (this.listeners.has(key)) continue;
        const l = await this.listen(w.host, w.port);
        opened.push(l);
        this.listeners.set(key, l);
      }
      for (const inst of instances) await runAll(inst.startups);
      await this.http.commit(stage);
    } catch (err) {
      for (const l of opened) {
        await closeListener(l);
        this.listeners.delete(`${l.host}|${l.configuredPort}`);
      }
      for (const inst of instances) await runAll(inst.shutdowns);
      throw err;
    }
    // The swap: each listener gets its new routes in one assignment.
    const tables = new Map<string, Route[]>();
    for (const inst of instances) {
      for (const r of inst.routes) {
        const key = `${r.host}|${r.port}`;
        const list = tables.get(key) ?? [];
        list.push({ zone: r.zone, handler: r.handler, server: r.server });
        tables.set(key, list);
      }
    }
    for (const [key, l] of this.listeners) {
      const routes = tables.get(key);
      if (routes) l.routes = routes.sort((a, b) => b.zone.length - a.zone.length);
    }
    const old = this.instances;
    this.instances = instances;
    for (const [key, l] of [...this.listeners]) {
      if (!tables.has(key)) {
        this.listeners.delete(key);
        await closeListener(l);
      }
    }
    for (const inst of old) await runAll(inst.shutdowns);
    const first = !this.configHash;
    this.configHash = hash;
    this.metrics.reloadVersion.reset();
    this.metrics.reloadVersion.set({ hash: "sha512", value: hash }, 1);
    if (first) {
      for (const block of parsed.blocks)
        for (const k of block.keys)
          this.runtime.out(k.includes(":") ? k : `${k}:${this.options.defaultPort ?? 53}`);
      this.runtime.out(`CoreDNS-${COREDNS_VERSION}`);
      this.runtime.out(`${process.platform}/${process.arch}, node${process.versions.node}, klab`);
    }
    this.logger.info(
      { listeners: [...this.listeners.values()].map((l) => `${l.host}:${l.port}`), sha512: hash },
      first ? "serving" : "reloaded",
    );
    for (const inst of instances) await runAll(inst.serving);
  }

  isReady(): { stopping: boolean; notReady: string[] } {
    const notReady: string[] = [];
    for (const inst of this.instances)
      for (const [name, check] of inst.readies) if (!check()) notReady.push(name);
    return { stopping: this.stopped, notReady };
  }

  private buildInstance(block: ServerBlock, stage: HttpStage, seen: Map<string, string>): Instance {
    const defaultPort = this.options.defaultPort ?? 53;
    const addrs = block.keys.flatMap((k) => {
      try {
        return parseKey(k).map((a) => ({ zone: a.zone, port: a.port ?? defaultPort }));
      } catch (err) {
        if (err instanceof KeyError) throw new CorefileError(block.file, block.line, err.message);
        throw err;
      }
    });
    for (const a of addrs) {
      const key = `${a.zone}:${a.port}`;
      if (seen.has(key))
        throw new CorefileError(block.file, block.line, `cannot serve dns://${key} - it is already defined`);
      seen.set(key, key);
    }
    for (const d of block.directives) {
      if (!KNOWN_PLUGINS.has(d.name))
        throw new CorefileError(d.file, d.line, `Unknown directive '${d.name}'`);
    }
    const port = addrs[0]!.port;
    const inst: Instance = {
      plugins: [],
      startups: [],
      serving: [],
      shutdowns: [],
      readies: new Map(),
      lameduckMs: 0,
      routes: [],
    };
    let hosts: string[] = [this.options.defaultHost ?? "0.0.0.0"];
    const serverLabel = `dns://:${port}`;
    const zones = [...new Set(addrs.map((a) => a.zone))];
    let handler: Handler = () => Promise.reject(new DnsError(Rcode.SERVFAIL, "no next plugin found"));
    const ctx: SetupContext = {
      runtime: this.runtime,
      zones,
      port,
      server: serverLabel,
      http: stage,
      lookup: (name, type) => this.lookup(hosts[0]!, port, name, type),
      address: () => {
        const l = this.listeners.get(`${hosts[0]}|${port}`);
        return {
          host: hosts[0] === "0.0.0.0" ? "127.0.0.1" : hosts[0] === "::" ? "::1" : hosts[0]!,
          port: l?.port ?? port,
        };
      },
      onStartup: (fn) => inst.startups.push(fn),
      onShutdown: (fn) => inst.shutdowns.push(fn),
      onServing: (fn) => inst.serving.push(fn),
      ready: (name, check) => inst.readies.set(name, check),
      bind: (h) => (hosts = h),
      lameduck: (ms) => (inst.lameduckMs = Math.max(inst.lameduckMs, ms)),
    };
    for (const [name, setup] of PLUGIN_ORDER) {
      const dirs = block.directives.filter((d) => d.name === name);
      if (dirs.length === 0) continue;
      inst.plugins.push(...setup(dirs, ctx));
      for (const z of zones)
        this.metrics.pluginEnabled.set({ server: serverLabel, zone: z, view: "", name }, 1);
    }
    for (const p of [...inst.plugins].reverse()) {
      const next = handler;
      handler = async (req) => {
        const res = await p.serve(req, next);
        req.plugin ??= p.name;
        return res;
      };
    }
    if (inst.plugins.length === 0)
      handler = () => Promise.reject(new DnsError(Rcode.SERVFAIL, "no plugins in server block"));
    inst.routes = hosts.flatMap((host) =>
      zones.map((zone) => ({ host, port, zone, handler, server: serverLabel })),
    );
    return inst;
  }

  private route(l: Listener, name: string): Route | undefined {
    const lname = name.toLowerCase();
    for (const r of l.routes) {
      if (
        r.zone === "." ||
        lname === r.zone ||
        lname.endsWith(`.${r.zone}`) ||
        `${lname}.` === r.zone ||
        `${lname}.`.endsWith(`.${r.zone}`)
      )
        return r;
    }
    return undefined;
  }

  private async lookup(host: string, port: number, name: string, type: RecordType): Promise<Message> {
    const l = this.listeners.get(`${host}|${port}`);
    const question = { name: name.replace(/\.$/, "") || ".", type, class: "IN" as const };
    const msg = { id: 0, type: "query" as const, flags: 0x100, questions: [question] };
    const route = l ? this.route(l, question.name) : undefined;
    if (!route) return setRcode(reply({ msg, question }), Rcode.SERVFAIL);
    const req: Request = {
      msg,
      question,
      remote: { address: "127.0.0.1", port: 0, family: 4 },
      proto: "udp",
      size: 0,
      bufsize: 4096,
      edns: false,
      do: false,
      server: route.server,
      zone: route.zone,
      internal: true,
      start: performance.now(),
    };
    try {
      return await route.handler(req);
    } catch (err) {
      return setRcode(reply(req), err instanceof DnsError ? err.rcode : Rcode.SERVFAIL);
    }
  }

  /** One query in, one reply out (or nothing for a packet that cannot be answered). */
  async handle(
    l: Listener,
    buf: Buffer,
    remote: { address: string; port: number; family: string },
    proto: "udp" | "tcp",
  ): Promise<Buffer | undefined> {
    const start = performance.now();
    const decoded = decodeQuery(buf);
    if (!decoded.ok) return decoded.reply;
    const q = decoded.query;
    const question = q.msg.questions![0]!;
    const route = this.route(l, question.name);
    const family: 4 | 6 = remote.family === "IPv6" && !remote.address.startsWith("::ffff:") ? 6 : 4;
    const req: Request = {
      msg: q.msg,
      question,
      // a regular expression per query cost more than this test
      remote: {
        address: remote.address.startsWith("::ffff:") ? remote.address.slice(7) : remote.address,
        port: remote.port,
        family,
      },
      proto,
      size: buf.length,
      bufsize: proto === "tcp" ? 65535 : q.bufsize,
      edns: q.edns,
      do: q.do,
      server: route?.server ?? `dns://:${l.configuredPort}`,
      zone: route?.zone ?? ".",
      start,
    };
    let res: Message;
    if (!route) {
      res = setRcode(reply(req), Rcode.REFUSED);
    } else {
      try {
        res = await route.handler(req);
      } catch (err) {
        if (!(err instanceof DnsError)) {
          this.metrics.panics.inc();
          this.logger.error({ err, name: question.name, type: question.type }, "plugin failed");
        }
        res = setRcode(reply(req), err instanceof DnsError ? err.rcode : Rcode.SERVFAIL);
      }
    }
    res.id = q.msg.id ?? 0;
    let out: Buffer | undefined;
    const rq = res.questions?.length === 1 ? res.questions[0]! : undefined;
    // The records are the ones a wire slot was made for: replies to the same query bytes reuse
    // the encoding made the first time.
    const slot =
      res.wire &&
      rq &&
      res.wire.answers === res.answers &&
      res.wire.authorities === res.authorities &&
      res.wire.additionals === res.additionals
        ? res.wire
        : undefined;
    const variant = slot ? findVariant(slot.replies, buf, proto) : -1;
    if (slot && variant >= 0) {
      const hit = slot.replies[variant]!;
      if (hit.flags === res.flags && hit.name === rq!.name && hit.type === rq!.type) {
        out = Buffer.allocUnsafe(hit.buf.length);
        hit.buf.copy(out);
        out.writeUInt16BE(res.id, 0);
      }
    }
    try {
      if (!out) {
        out = encodeReply(
          res,
          { edns: q.edns, bufsize: proto === "tcp" ? 65535 : q.bufsize, do: q.do },
          proto,
        );
        if (slot) {
          // kept as sent: later hits copy it and write their own id
          const made = {
            proto,
            query: Buffer.from(buf.subarray(2)),
            flags: res.flags,
            name: rq!.name,
            type: rq!.type,
            buf: out,
          };
          if (variant >= 0) slot.replies[variant] = made;
          else {
            // a handful of query variants per record set (flags, EDNS sizes); cookies make more
            if (slot.replies.length >= 8) slot.replies.length = 0;
            slot.replies.push(made);
          }
        }
      }
    } catch (err) {
      this.logger.error({ err, name: question.name }, "reply could not be encoded");
      res = setRcode(reply(req), Rcode.SERVFAIL);
      out = encodeReply(res, q, proto);
    }
    if (req.afterWrite) for (const fn of req.afterWrite) fn(res, out.length);
    return out;
  }

  private async listen(host: string, configuredPort: number): Promise<Listener> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.listenOnce(host, configuredPort);
      } catch (err) {
        // Port 0: the UDP port the kernel chose may be taken for TCP; try another.
        if (configuredPort !== 0 || attempt >= 20 || (err as NodeJS.ErrnoException).code !== "EADDRINUSE")
          throw err;
      }
    }
  }

  private async listenOnce(host: string, configuredPort: number): Promise<Listener> {
    const udp = createSocket({ type: host.includes(":") ? "udp6" : "udp4", reuseAddr: false });
    await new Promise<void>((resolve, reject) => {
      udp.once("error", reject);
      udp.bind(configuredPort, host, () => {
        udp.off("error", reject);
        resolve();
      });
    });
    const port = udp.address().port;
    const tcp = createServer();
    const l: Listener = {
      host,
      configuredPort,
      port,
      udp,
      tcp,
      connections: new Set(),
      routes: [],
      closed: false,
    };
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once("error", reject);
        tcp.listen(port, host, () => {
          tcp.off("error", reject);
          resolve();
        });
      });
    } catch (err) {
      udp.close();
      throw err;
    }
    udp.on("error", (err) => this.logger.error({ err }, "udp socket error"));
    tcp.on("error", (err) => this.logger.error({ err }, "tcp listener error"));
    udp.on("message", (msg, rinfo) => {
      this.handle(l, msg, rinfo, "udp").then(
        (out) => {
          if (!out || l.closed) return;
          try {
            // no callback: a completed send then costs no callback of its own; errors go to the
            // socket's error listener
            udp.send(out, rinfo.port, rinfo.address);
          } catch {
            // the listener closed while the query was in flight
          }
        },
        (err) => this.logger.error({ err }, "udp query failed"),
      );
    });
    tcp.on("connection", (sock) => this.serveTcp(l, sock));
    return l;
  }

  private serveTcp(l: Listener, sock: TcpSocket): void {
    l.connections.add(sock);
    sock.setNoDelay(true);
    sock.setTimeout(10_000, () => sock.destroy());
    sock.on("close", () => l.connections.delete(sock));
    sock.on("error", () => sock.destroy());
    let pending = Buffer.alloc(0);
    const remote = {
      address: sock.remoteAddress ?? "",
      port: sock.remotePort ?? 0,
      family: sock.remoteFamily ?? "IPv4",
    };
    sock.on("data", (chunk) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length >= 2) {
        const len = pending.readUInt16BE(0);
        if (len === 0) {
          sock.destroy();
          return;
        }
        if (pending.length < 2 + len) break;
        const frame = pending.subarray(2, 2 + len);
        pending = pending.subarray(2 + len);
        this.handle(l, Buffer.from(frame), remote, "tcp").then(
          (out) => {
            if (!out) {
              // Unanswerable garbage on a stream: the framing can no longer be trusted.
              sock.destroy();
              return;
            }
            if (sock.writable) {
              const header = Buffer.alloc(2);
              header.writeUInt16BE(out.length);
              sock.write(Buffer.concat([header, out]));
            }
          },
          () => sock.destroy(),
        );
      }
    });
  }

  /** Stops serving: waits out the health plugin's lameduck, then closes everything. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const lameduck = Math.max(0, ...this.instances.map((i) => i.lameduckMs));
    if (lameduck > 0) {
      this.logger.info({ lameduckMs: lameduck }, "lameduck");
      await new Promise((r) => setTimeout(r, lameduck));
    }
    for (const l of this.listeners.values()) await closeListener(l);
    this.listeners.clear();
    for (const inst of this.instances) await runAll(inst.shutdowns);
    this.instances = [];
    await this.http.close();
  }
}

async function runAll(fns: (() => Promise<void> | void)[]): Promise<void> {
  for (const fn of fns) await fn();
}

function closeListener(l: Listener): Promise<void> {
  return new Promise((resolve) => {
    l.closed = true;
    for (const s of l.connections) s.destroy();
    try {
      l.udp.close();
    } catch {
      // already closed
    }
    l.tcp.close(() => resolve());
  });
}

function hashFiles(text: string, imports: string[]): string {
  const h = createHash("sha512").update(text);
  for (const f of imports) {
    try {
      h.update(readFileSync(f));
    } catch {
      h.update(`missing:${f}`);
    }
  }
  return h.digest("hex");
}

export function defaultLocalIPs(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (!a.internal) out.push(a.address);
  return out.length > 0 ? out : ["127.0.0.1"];
}

export { dnsPacket };
