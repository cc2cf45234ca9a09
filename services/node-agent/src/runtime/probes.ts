import { spawnCollect } from "../sandbox/spawner.ts";
import type { Container, Probe } from "@klab/api";
import { dialHTTP, dialTCP } from "./probe-dial.ts";

export type ProbeResult = { ok: true } | { ok: false; output: string };

/** Where a probe runs: commands and connections happen inside the pod. */
export interface ProbeTarget {
  podIP?: string;
  /** nsenter prefix into the pod's namespaces */
  enter: string[];
  env: Record<string, string>;
  container: Container;
  /**
   * The agent reaches the pod's IP from its own network namespace (the node's), so httpGet and
   * tcpSocket probes are dialled from the agent, as kubelet dials them, with no process per probe.
   */
  dialFromNode?: boolean;
}

function resolvePort(port: number | string, c: Container): number | undefined {
  if (typeof port === "number") return port;
  if (/^\d+$/.test(port)) return Number(port);
  return c.ports?.find((p) => p.name === port)?.containerPort;
}

async function runIn(
  argv: string[],
  env: Record<string, string>,
  timeoutMs: number,
): Promise<{ code: number | null; out: string; timedOut: boolean }> {
  // from a worker thread: fifty pods probed every second must not hold the agent's event loop
  const r = await spawnCollect({ argv, env, timeoutMs, detached: true, maxBytes: 10_240 });
  if (r.error) return { code: -1, out: r.error, timedOut: r.timedOut };
  return { code: r.code, out: r.out.slice(0, 10_240), timedOut: r.timedOut };
}

// bash's /dev/tcp opens the connection in the pod's namespace without starting a runtime
const TCP_CHECK = 'exec 3<>"/dev/tcp/$0/$1"';

/** One probe attempt, with kubelet's failure messages. */
export async function runProbe(probe: Probe, t: ProbeTarget): Promise<ProbeResult> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  if (probe.exec) {
    const cmd = probe.exec.command ?? [];
    const r = await runIn([...t.enter, ...cmd], t.env, timeoutMs);
    if (r.timedOut) return { ok: false, output: `command ${JSON.stringify(cmd.join(" "))} timed out` };
    return r.code === 0
      ? { ok: true }
      : { ok: false, output: r.out || `command terminated with exit code ${r.code}` };
  }
  if (probe.httpGet) {
    const g = probe.httpGet;
    const port = resolvePort(g.port, t.container);
    if (!port) return { ok: false, output: `unknown port ${JSON.stringify(g.port)}` };
    const host = g.host || t.podIP || "127.0.0.1";
    const scheme = (g.scheme ?? "HTTP").toLowerCase();
    const path = g.path ?? "/";
    const url = `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}${path.startsWith("/") ? path : `/${path}`}`;
    if (t.dialFromNode) {
      const r = await dialHTTP({
        scheme: scheme === "https" ? "https" : "http",
        host,
        port,
        path: path.startsWith("/") ? path : `/${path}`,
        headers: g.httpHeaders ?? [],
        timeoutMs,
      });
      if ("status" in r)
        return r.status >= 200 && r.status < 400
          ? { ok: true }
          : { ok: false, output: `HTTP probe failed with statuscode: ${r.status}` };
      return { ok: false, output: `Get "${url}": ${r.error}` };
    }
    const headers = (g.httpHeaders ?? []).flatMap((h) => ["-H", `${h.name}: ${h.value}`]);
    const r = await runIn(
      [
        ...t.enter,
        "curl",
        "-sS",
        "-k",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        String(probe.timeoutSeconds ?? 1),
        "-A",
        "kube-probe/1.32",
        ...headers,
        url,
      ],
      t.env,
      timeoutMs + 2000,
    );
    const code = Number(r.out.trim().slice(-3));
    if (r.code !== 0) {
      const reason =
        r.code === 28
          ? "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
          : r.code === 7
            ? `dial tcp ${host}:${port}: connect: connection refused`
            : r.out.trim();
      return { ok: false, output: `Get "${url}": ${reason}` };
    }
    return code >= 200 && code < 400
      ? { ok: true }
      : { ok: false, output: `HTTP probe failed with statuscode: ${code}` };
  }
  if (probe.tcpSocket) {
    const port = resolvePort(probe.tcpSocket.port, t.container);
    if (!port) return { ok: false, output: `unknown port ${JSON.stringify(probe.tcpSocket.port)}` };
    const host = probe.tcpSocket.host || t.podIP || "127.0.0.1";
    if (t.dialFromNode) {
      const error = await dialTCP(host, port, timeoutMs);
      return error === undefined ? { ok: true } : { ok: false, output: error };
    }
    const r = await runIn([...t.enter, "bash", "-c", TCP_CHECK, host, String(port)], t.env, timeoutMs + 2000);
    return r.code === 0
      ? { ok: true }
      : { ok: false, output: `dial tcp ${host}:${port}: connect: connection refused` };
  }
  if (probe.grpc) return { ok: false, output: "grpc probes are not supported by klab" };
  return { ok: false, output: "probe has no handler" };
}

/** Consecutive-result bookkeeping for one probe (success/failure thresholds). */
export class ProbeState {
  successes = 0;
  failures = 0;
  constructor(
    readonly probe: Probe,
    public result: boolean,
  ) {}

  record(ok: boolean): boolean {
    if (ok) {
      this.successes++;
      this.failures = 0;
      if (this.successes >= (this.probe.successThreshold ?? 1)) this.result = true;
    } else {
      this.failures++;
      this.successes = 0;
      if (this.failures >= (this.probe.failureThreshold ?? 3)) this.result = false;
    }
    return this.result;
  }
}
