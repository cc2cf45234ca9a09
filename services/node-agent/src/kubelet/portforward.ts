import type { WebSocket } from "ws";
import type { Duplex } from "node:stream";
import { frame } from "./channels.ts";

/**
 * Port-forward over the channel.k8s.io WebSocket protocol (what the API server's
 * `portforward.k8s.io` WebSocket endpoint speaks with ?ports=): for the i-th port, channel 2i
 * carries data and 2i+1 errors; the first frame the server sends on each channel is the
 * port number, 2 bytes little-endian.
 */
export function serveChannelPortForward(
  ws: WebSocket,
  ports: number[],
  dial: (port: number) => Promise<Duplex>,
): void {
  const streams: Array<Duplex | undefined> = [];
  const send = (ch: number, data: Buffer | string) => {
    if (ws.readyState === ws.OPEN) ws.send(frame(ch, data));
  };
  ports.forEach((port, i) => {
    const p = Buffer.alloc(2);
    p.writeUInt16LE(port);
    send(2 * i, p);
    send(2 * i + 1, p);
    dial(port).then(
      (s) => {
        if (ws.readyState !== ws.OPEN) return s.destroy();
        streams[i] = s;
        s.on("data", (d: Buffer) => send(2 * i, d));
        s.on("error", (e) => send(2 * i + 1, `error forwarding port ${port}: ${e.message}`));
        s.on("close", () => ws.close(1000));
      },
      (e: Error) => {
        send(2 * i + 1, `error forwarding port ${port} to pod: ${e.message}`);
        ws.close(1000);
      },
    );
  });
  const pending: Array<Array<Buffer>> = ports.map(() => []);
  ws.on("message", (raw: Buffer) => {
    const msg = Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
    if (msg.length === 0) return;
    const ch = msg[0];
    const i = ch >> 1;
    if (ch % 2 !== 0 || i >= ports.length) return;
    const data = msg.subarray(1);
    const s = streams[i];
    if (s) s.write(data);
    else pending[i].push(data);
  });
  const flush = setInterval(() => {
    streams.forEach((s, i) => {
      if (s && pending[i].length) for (const d of pending[i].splice(0)) s.write(d);
    });
  }, 20);
  ws.on("close", () => {
    clearInterval(flush);
    for (const s of streams) s?.destroy();
  });
}

export function parsePorts(q: URLSearchParams): number[] | string {
  const raw = q.getAll("ports").flatMap((p) => p.split(","));
  if (!raw.length) return "at least one port must be specified";
  const ports: number[] = [];
  for (const r of raw) {
    const n = Number(r.trim());
    if (!Number.isInteger(n) || n < 1 || n > 65535) return `invalid port "${r}"`;
    ports.push(n);
  }
  return ports;
}
