/**
 * The channel.k8s.io WebSocket framing used by exec/attach: each binary message is one channel
 * byte then the payload. v5 adds channel 255 "close" (payload: the channel being closed).
 */
export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;
export const ERROR = 3;
export const RESIZE = 4;
export const CLOSE = 255;

export const EXEC_PROTOCOLS = [
  "v5.channel.k8s.io",
  "v4.channel.k8s.io",
  "v3.channel.k8s.io",
  "v2.channel.k8s.io",
  "channel.k8s.io",
];

export function frame(channel: number, payload: Buffer | string): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload) : payload;
  return Buffer.concat([Buffer.from([channel]), body]);
}

export type Incoming =
  | { kind: "stdin"; data: Buffer }
  | { kind: "resize"; width: number; height: number }
  | { kind: "close"; channel: number }
  | { kind: "invalid"; why: string };

export function parseIncoming(msg: Buffer, protocol: string): Incoming {
  if (msg.length === 0) return { kind: "invalid", why: "empty message" };
  const ch = msg[0];
  const data = msg.subarray(1);
  if (ch === STDIN) return { kind: "stdin", data };
  if (ch === RESIZE) {
    try {
      const size = JSON.parse(data.toString()) as { Width?: unknown; Height?: unknown };
      const width = Number(size.Width);
      const height = Number(size.Height);
      if (
        !Number.isInteger(width) ||
        !Number.isInteger(height) ||
        width < 0 ||
        height < 0 ||
        width > 65535 ||
        height > 65535
      )
        return { kind: "invalid", why: "bad resize size" };
      return { kind: "resize", width, height };
    } catch {
      return { kind: "invalid", why: "resize payload is not JSON" };
    }
  }
  if (ch === CLOSE && protocol === "v5.channel.k8s.io" && data.length === 1)
    return { kind: "close", channel: data[0] };
  return { kind: "invalid", why: `unexpected channel ${ch}` };
}

/** Picks the first protocol the client offers that we speak, as the kubelet does. */
export function negotiate(offered: string | undefined, supported: string[]): string | undefined {
  const list = (offered ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return list.find((p) => supported.includes(p));
}
