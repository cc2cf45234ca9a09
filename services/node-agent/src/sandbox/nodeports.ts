import { readFileSync, writeFileSync } from "node:fs";
import { ip, run } from "./run.ts";

/**
 * In a container /proc/sys is read-only: there the value comes from the container's
 * net.ipv4.conf.default.accept_local (docker-compose.yml sets it), inherited by lab0.
 */
function acceptLocalOnLab0(): void {
  const file = "/proc/sys/net/ipv4/conf/lab0/accept_local";
  try {
    writeFileSync(file, "1");
  } catch (err) {
    if (readFileSync(file, "utf8").trim() === "1") return;
    throw new Error(
      `cannot set ${file} (${(err as Error).message}): run the node with the sysctl net.ipv4.conf.default.accept_local=1`,
    );
  }
}

/** Protocol numbers, not names: `ip rule` resolves names through /etc/protocols, which minimal images lack. */
const IPPROTO = { tcp: "6", udp: "17" } as const;

/** Policy-routing table that hands NodePort traffic to the dataplane (any free id works). */
export const NODEPORT_TABLE = "7370";
const PREF_TCP = "10";
const PREF_UDP = "11";
const PREF_LOCAL = "100";
const PREF_LISTENER = "9";
const LISTENER_SYNC_MS = 2000;

/**
 * Steers connections to the node's NodePort range, arriving on the node's own interface, into
 * lab0: the dataplane holds kube-proxy's KUBE-NODEPORTS rules (the node kernel's netfilter in a
 * real node), so the node kernel must not answer them itself. The `local` table lookup moves after
 * these rules; replies come back through lab0 from the node's address, which the kernel accepts
 * there (accept_local). Does nothing where the node address is not on an interface here.
 */
export async function steerNodePorts(
  netns: string | undefined,
  nodeIP: string,
  range = "30000-32767",
): Promise<string | undefined> {
  const out = await ip(netns, ["-o", "-4", "addr", "show", "to", `${nodeIP}/32`]).catch(() => "");
  const dev = out.trim().split(/\s+/)[1];
  if (!dev || dev === "lab0") return undefined;
  await ip(netns, ["route", "replace", "default", "dev", "lab0", "table", NODEPORT_TABLE]);
  for (const [pref, proto] of [
    [PREF_TCP, "tcp"],
    [PREF_UDP, "udp"],
  ] as const) {
    await ip(netns, ["rule", "del", "pref", pref]).catch(() => undefined);
    await ip(netns, [
      "rule",
      "add",
      "pref",
      pref,
      "iif",
      dev,
      "ipproto",
      IPPROTO[proto],
      "dport",
      range,
      "lookup",
      NODEPORT_TABLE,
    ]);
  }
  if (!(await ip(netns, ["rule", "show", "pref", PREF_LOCAL]).catch(() => "")).includes("lookup local")) {
    await ip(netns, ["rule", "add", "pref", PREF_LOCAL, "lookup", "local"]);
  }
  await ip(netns, ["rule", "del", "pref", "0", "lookup", "local"]).catch(() => undefined);
  const key = "net.ipv4.conf.lab0.accept_local";
  if (netns) await run("ip", ["netns", "exec", netns, "sysctl", "-qw", `${key}=1`]);
  else acceptLocalOnLab0();
  return dev;
}

/** Local ports of the sockets listening in the namespace (ss -H -l), per protocol. */
export function parseListeners(ssOutput: string): number[] {
  const ports = new Set<number>();
  for (const line of ssOutput.split("\n")) {
    const local = line.trim().split(/\s+/)[3];
    const m = local ? /:(\d+)$/.exec(local) : null;
    if (m) ports.add(Number(m[1]));
  }
  return [...ports].sort((a, b) => a - b);
}

/**
 * A socket the node itself listens on inside the NodePort range (kube-proxy's
 * healthCheckNodePort servers) gets its connections as on a real node, where no KUBE-NODEPORTS
 * rule matches them: a rule per listening port sends them to the local table first.
 */
export class NodePortListeners {
  private timer?: NodeJS.Timeout;
  private held = new Set<string>();

  constructor(
    private readonly netns: string | undefined,
    private readonly dev: string,
    private readonly range: [number, number] = [30000, 32767],
  ) {}

  start(): void {
    const tick = () =>
      void this.sync()
        .catch(() => undefined)
        .finally(() => {
          if (this.timer) this.timer = setTimeout(tick, LISTENER_SYNC_MS).unref();
        });
    this.timer = setTimeout(tick, 0).unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  async sync(): Promise<void> {
    const ss = (flags: string) =>
      this.netns ? run("ip", ["netns", "exec", this.netns, "ss", "-H", flags]) : run("ss", ["-H", flags]);
    const want = new Set<string>();
    for (const [proto, flags] of [
      ["tcp", "-ltn"],
      ["udp", "-lun"],
    ] as const) {
      for (const port of parseListeners(await ss(flags)))
        if (port >= this.range[0] && port <= this.range[1]) want.add(`${proto}/${port}`);
    }
    const rule = (key: string) => {
      const [proto, port] = key.split("/");
      return [
        "pref",
        PREF_LISTENER,
        "iif",
        this.dev,
        "ipproto",
        IPPROTO[proto as keyof typeof IPPROTO],
        "dport",
        port!,
        "lookup",
        "local",
      ];
    };
    for (const key of want)
      if (!this.held.has(key)) {
        // a previous agent's rule may still be there
        await ip(this.netns, ["rule", "add", ...rule(key)]).catch((err: Error) => {
          if (!/File exists/.test(err.message)) throw err;
        });
        this.held.add(key);
      }
    for (const key of [...this.held])
      if (!want.has(key)) {
        await ip(this.netns, ["rule", "del", ...rule(key)]).catch(() => undefined);
        this.held.delete(key);
      }
  }
}
