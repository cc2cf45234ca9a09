import { createSocket, type Socket as UdpSocket, type RemoteInfo } from "node:dgram";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { categorizeEndpoints, type ServicePortInfo } from "./service-ports.ts";

// kube-proxy's legacy userspace mode: the proxy itself listens on a port per Service port,
// accepts the client's connection, picks an endpoint round-robin (honouring ClientIP affinity)
// and copies bytes both ways. The dataplane only redirects the Service address to that port.

export interface Portal {
  service: string;
  protocol: "TCP" | "UDP";
  clusterIP: string;
  port: number;
  nodePort: number;
  externalIPs: string[];
  /** where this proxy listens for the Service port */
  proxyPort: number;
}

export interface UserspaceLogger {
  warn(obj: object, msg?: string): void;
}

/** Legacy kube-proxy's EndpointDialTimeouts: each failed dial moves on to the next endpoint. */
const DIAL_TIMEOUTS_MS = [250, 500, 1000, 2000];
/** Legacy --udp-timeout default: a UDP "session" idles out after 250 ms. */
const UDP_IDLE_MS = 250;

interface Backend {
  host: string;
  port: number;
}

/** LoadBalancerRR: round-robin over endpoints, with ClientIP affinity when the Service asks. */
export class RoundRobin {
  private index = 0;
  private readonly affinity = new Map<string, { backend: Backend; last: number }>();
  endpoints: Backend[] = [];
  stickySeconds = 0;

  next(clientIP: string, now = Date.now()): Backend | undefined {
    if (this.endpoints.length === 0) return undefined;
    if (this.stickySeconds > 0) {
      const a = this.affinity.get(clientIP);
      if (
        a &&
        now - a.last < this.stickySeconds * 1000 &&
        this.endpoints.some((e) => e.host === a.backend.host && e.port === a.backend.port)
      ) {
        a.last = now;
        return a.backend;
      }
    }
    const b = this.endpoints[this.index % this.endpoints.length];
    this.index = (this.index + 1) % this.endpoints.length;
    if (this.stickySeconds > 0) this.affinity.set(clientIP, { backend: b, last: now });
    return b;
  }

  update(endpoints: Backend[], stickySeconds: number): void {
    const same =
      endpoints.length === this.endpoints.length &&
      endpoints.every((e, i) => e.host === this.endpoints[i].host && e.port === this.endpoints[i].port);
    if (!same) this.index = 0;
    this.endpoints = endpoints;
    this.stickySeconds = stickySeconds;
    if (!stickySeconds) this.affinity.clear();
  }
}

interface ActivePortal {
  portal: Portal;
  lb: RoundRobin;
  tcp?: Server;
  udp?: UdpSocket;
  udpSessions?: Map<string, { sock: UdpSocket; timer: NodeJS.Timeout }>;
  sockets: Set<Socket>;
}

export class UserspaceProxier {
  private readonly portals = new Map<string, ActivePortal>();

  constructor(
    private readonly listenHost = "0.0.0.0",
    private readonly log?: UserspaceLogger,
  ) {}

  list(): Portal[] {
    return [...this.portals.values()].map((p) => p.portal);
  }

  /** Opens a listener for every new Service port, closes those of deleted ones, updates endpoints. */
  async sync(servicePorts: ServicePortInfo[]): Promise<Portal[]> {
    const wanted = new Map<string, ServicePortInfo>();
    for (const s of servicePorts) if (s.protocol !== "SCTP") wanted.set(`${s.nameString}/${s.protocol}`, s);
    for (const [key, p] of this.portals) {
      if (!wanted.has(key)) {
        this.portals.delete(key);
        this.closePortal(p);
      }
    }
    for (const [key, s] of wanted) {
      const { clusterEndpoints } = categorizeEndpoints(s);
      const backends = clusterEndpoints.map((e) => ({ host: e.ip, port: e.port }));
      let p = this.portals.get(key);
      if (!p) {
        p = await this.open(s);
        if (!p) continue;
        this.portals.set(key, p);
      }
      p.portal.clusterIP = s.clusterIP;
      p.portal.port = s.port;
      p.portal.nodePort = s.nodePort;
      p.portal.externalIPs = s.externalIPs;
      p.lb.update(backends, s.stickyMaxAgeSeconds);
    }
    return this.list();
  }

  private async open(s: ServicePortInfo): Promise<ActivePortal | undefined> {
    const portal: Portal = {
      service: s.nameString,
      protocol: s.protocol as "TCP" | "UDP",
      clusterIP: s.clusterIP,
      port: s.port,
      nodePort: s.nodePort,
      externalIPs: s.externalIPs,
      proxyPort: 0,
    };
    const active: ActivePortal = { portal, lb: new RoundRobin(), sockets: new Set() };
    try {
      if (s.protocol === "TCP") {
        const server = createServer((client) => this.acceptTcp(active, client));
        await new Promise<void>((resolve, reject) => {
          server.once("error", reject);
          server.listen(0, this.listenHost, () => resolve());
        });
        server.on("error", (err) =>
          this.log?.warn({ service: s.nameString, err: err.message }, "proxy socket error"),
        );
        active.tcp = server;
        portal.proxyPort = (server.address() as { port: number }).port;
      } else {
        const sock = createSocket("udp4");
        await new Promise<void>((resolve, reject) => {
          sock.once("error", reject);
          sock.bind(0, this.listenHost, () => resolve());
        });
        sock.on("error", (err) =>
          this.log?.warn({ service: s.nameString, err: err.message }, "proxy socket error"),
        );
        active.udp = sock;
        active.udpSessions = new Map();
        sock.on("message", (msg, rinfo) => this.forwardUdp(active, msg, rinfo));
        portal.proxyPort = sock.address().port;
      }
    } catch (err) {
      this.log?.warn({ service: s.nameString, err: (err as Error).message }, "could not open a proxy port");
      return undefined;
    }
    return active;
  }

  private acceptTcp(p: ActivePortal, client: Socket): void {
    p.sockets.add(client);
    client.on("close", () => p.sockets.delete(client));
    client.on("error", () => client.destroy());
    client.pause();
    const clientIP = (client.remoteAddress ?? "").replace(/^::ffff:/, "");
    const tried = new Set<string>();
    const attempt = (n: number): void => {
      const b = p.lb.next(clientIP);
      if (
        !b ||
        n >= DIAL_TIMEOUTS_MS.length ||
        (tried.has(`${b.host}:${b.port}`) && tried.size >= p.lb.endpoints.length)
      ) {
        // No endpoint could be reached: close, as the legacy proxy did.
        client.destroy();
        return;
      }
      tried.add(`${b.host}:${b.port}`);
      const upstream = createConnection({ host: b.host, port: b.port });
      const timer = setTimeout(() => upstream.destroy(new Error("dial timeout")), DIAL_TIMEOUTS_MS[n]);
      upstream.once("connect", () => {
        clearTimeout(timer);
        p.sockets.add(upstream);
        upstream.on("close", () => p.sockets.delete(upstream));
        upstream.on("error", () => client.destroy());
        client.on("close", () => upstream.destroy());
        upstream.on("close", () => client.end());
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
      upstream.once("error", () => {
        clearTimeout(timer);
        // Refused or timed out before connecting: try the next endpoint.
        if (!client.destroyed && !p.sockets.has(upstream)) attempt(n + 1);
      });
    };
    attempt(0);
  }

  private forwardUdp(p: ActivePortal, msg: Buffer, rinfo: RemoteInfo): void {
    const sessions = p.udpSessions as Map<string, { sock: UdpSocket; timer: NodeJS.Timeout }>;
    const key = `${rinfo.address}:${rinfo.port}`;
    let s = sessions.get(key);
    if (!s) {
      const b = p.lb.next(rinfo.address);
      if (!b) return;
      const sock = createSocket("udp4");
      sock.on("error", () => undefined);
      sock.on("message", (reply) => {
        p.udp?.send(reply, rinfo.port, rinfo.address);
        this.touch(sessions, key);
      });
      sock.connect(b.port, b.host);
      sessions.set(key, { sock, timer: setTimeout(() => undefined, 0) });
      sock.once("connect", () => sock.send(msg));
      this.touch(sessions, key);
      return;
    }
    s.sock.send(msg);
    this.touch(sessions, key);
  }

  private touch(sessions: Map<string, { sock: UdpSocket; timer: NodeJS.Timeout }>, key: string): void {
    const s = sessions.get(key);
    if (!s) return;
    clearTimeout(s.timer);
    s.timer = setTimeout(() => {
      sessions.delete(key);
      s.sock.close();
    }, UDP_IDLE_MS);
  }

  private closePortal(p: ActivePortal): void {
    p.tcp?.close();
    for (const s of p.sockets) s.destroy();
    if (p.udp) p.udp.close();
    for (const s of p.udpSessions?.values() ?? []) {
      clearTimeout(s.timer);
      s.sock.close();
    }
  }

  async close(): Promise<void> {
    for (const p of this.portals.values()) this.closePortal(p);
    this.portals.clear();
  }
}

/**
 * The nat rules the legacy userspace proxier installed so that Service traffic reaches its
 * ports: REDIRECT for pods (PREROUTING), DNAT to the node for the node's own processes.
 */
export function buildUserspaceRules(portals: Portal[], nodeIP: string): string {
  const chains = [
    "KUBE-NODEPORT-CONTAINER",
    "KUBE-NODEPORT-HOST",
    "KUBE-PORTALS-CONTAINER",
    "KUBE-PORTALS-HOST",
  ];
  const out = ["*nat", ...chains.map((c) => `:${c} - [0:0]`)];
  const sorted = [...portals].sort(
    (a, b) => a.service.localeCompare(b.service) || a.protocol.localeCompare(b.protocol),
  );
  for (const p of sorted) {
    const proto = p.protocol.toLowerCase();
    const comment = `-m comment --comment "${p.service}"`;
    for (const ip of [p.clusterIP, ...p.externalIPs]) {
      out.push(
        `-A KUBE-PORTALS-CONTAINER -d ${ip}/32 -p ${proto} ${comment} -m ${proto} --dport ${p.port} -j REDIRECT --to-ports ${p.proxyPort}`,
      );
      out.push(
        `-A KUBE-PORTALS-HOST -d ${ip}/32 -p ${proto} ${comment} -m ${proto} --dport ${p.port} -j DNAT --to-destination ${nodeIP}:${p.proxyPort}`,
      );
    }
    if (p.nodePort) {
      out.push(
        `-A KUBE-NODEPORT-CONTAINER -p ${proto} ${comment} -m ${proto} --dport ${p.nodePort} -j REDIRECT --to-ports ${p.proxyPort}`,
      );
      out.push(
        `-A KUBE-NODEPORT-HOST -p ${proto} ${comment} -m ${proto} --dport ${p.nodePort} -j DNAT --to-destination ${nodeIP}:${p.proxyPort}`,
      );
    }
  }
  out.push("COMMIT");
  return out.join("\n") + "\n";
}

export const USERSPACE_JUMP_RULES = [
  {
    table: "nat" as const,
    chain: "PREROUTING",
    rule: '-m addrtype --dst-type LOCAL -m comment --comment "handle service NodePorts; NOTE: this must be the last rule in the chain" -j KUBE-NODEPORT-CONTAINER',
    position: "append" as const,
  },
  {
    table: "nat" as const,
    chain: "OUTPUT",
    rule: '-m addrtype --dst-type LOCAL -m comment --comment "handle service NodePorts; NOTE: this must be the last rule in the chain" -j KUBE-NODEPORT-HOST',
    position: "append" as const,
  },
  {
    table: "nat" as const,
    chain: "PREROUTING",
    rule: '-m comment --comment "handle ClusterIPs; NOTE: this must be before the NodePort rules" -j KUBE-PORTALS-CONTAINER',
    position: "prepend" as const,
  },
  {
    table: "nat" as const,
    chain: "OUTPUT",
    rule: '-m comment --comment "handle ClusterIPs; NOTE: this must be before the NodePort rules" -j KUBE-PORTALS-HOST',
    position: "prepend" as const,
  },
];
