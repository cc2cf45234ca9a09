import type { Duplex } from "node:stream";
import type { WebSocket } from "ws";
import type { Logger } from "pino";
import {
  controlFrame,
  dataFrame,
  FLAG_FIN,
  FrameReader,
  GOAWAY,
  HeaderCodec,
  PING,
  RST_PROTOCOL_ERROR,
  RST_STREAM,
  SYN_REPLY,
  SYN_STREAM,
  u32,
  type Frame,
} from "./spdy.ts";

/** What kubectl 1.32 offers for port-forward: SPDY/3.1 frames carried in WebSocket binary messages. */
export const SPDY_PORTFORWARD_PROTOCOL = "SPDY/3.1+portforward.k8s.io";

interface Pair {
  port: number;
  dataStream?: number;
  errorStream?: number;
  conn?: Duplex;
  pending: Buffer[];
  clientDone: boolean;
  started: boolean;
}

/**
 * The kubelet side of portforward.k8s.io: for each forwarded connection the client opens an
 * "error" and a "data" stream sharing a requestID; the kubelet dials the port inside the pod and
 * copies bytes, writes a failure as text on the error stream, and closes both when done.
 */
export function serveSpdyPortForward(
  ws: WebSocket,
  dial: (port: number) => Promise<Duplex>,
  log: Logger,
): void {
  const reader = new FrameReader();
  const codec = new HeaderCodec();
  const pairs = new Map<string, Pair>();
  const byStream = new Map<number, { requestID: string; type: "data" | "error" }>();
  let chain: Promise<void> = Promise.resolve();
  let closed = false;

  const send = (buf: Buffer) => {
    if (!closed && ws.readyState === ws.OPEN) ws.send(buf);
  };
  const reset = (streamId: number, status: number) =>
    send(controlFrame(RST_STREAM, 0, u32(streamId, status)));
  const shutdown = (why: string) => {
    if (closed) return;
    log.debug({ why }, "port-forward session ends");
    send(controlFrame(GOAWAY, 0, u32(0, 0)));
    closed = true;
    ws.close(1000);
  };

  const finishPair = (p: Pair, error?: string) => {
    if (p.errorStream !== undefined) {
      if (error) send(dataFrame(p.errorStream, 0, Buffer.from(error)));
      send(dataFrame(p.errorStream, FLAG_FIN, Buffer.alloc(0)));
    }
    if (p.dataStream !== undefined) send(dataFrame(p.dataStream, FLAG_FIN, Buffer.alloc(0)));
  };

  const start = (requestID: string, p: Pair) => {
    p.started = true;
    dial(p.port).then(
      (conn) => {
        if (closed) return conn.destroy();
        p.conn = conn;
        for (const b of p.pending.splice(0)) conn.write(b);
        if (p.clientDone) conn.end();
        conn.on("data", (d: Buffer) => {
          for (let off = 0; off < d.length; off += 65536)
            send(dataFrame(p.dataStream!, 0, d.subarray(off, off + 65536)));
        });
        let ended = false;
        const done = (err?: Error) => {
          if (ended) return;
          ended = true;
          finishPair(p, err ? `error forwarding port ${p.port} to pod: ${err.message}` : undefined);
          pairs.delete(requestID);
        };
        conn.on("end", () => done());
        conn.on("close", () => done());
        conn.on("error", (e) => done(e));
      },
      (err: Error) => {
        finishPair(p, `error forwarding port ${p.port} to pod: ${err.message}`);
        pairs.delete(requestID);
      },
    );
  };

  const handle = async (f: Frame): Promise<void> => {
    if (!f.control) {
      const s = byStream.get(f.streamId);
      if (!s) return;
      const p = pairs.get(s.requestID);
      if (!p || s.type !== "data") return;
      if (f.data.length) {
        if (p.conn) p.conn.write(f.data);
        else p.pending.push(f.data);
      }
      if (f.flags & FLAG_FIN) {
        p.clientDone = true;
        p.conn?.end();
      }
      return;
    }
    switch (f.type) {
      case SYN_STREAM: {
        if (f.payload.length < 10) return shutdown("short SYN_STREAM");
        const streamId = f.payload.readUInt32BE(0) & 0x7fffffff;
        const headers = await codec.decode(f.payload.subarray(10));
        send(controlFrame(SYN_REPLY, 0, Buffer.concat([u32(streamId), await codec.encode({})])));
        const type = headers["streamtype"];
        const port = Number(headers["port"]);
        const requestID = headers["requestid"] ?? String(streamId);
        if ((type !== "data" && type !== "error") || !Number.isInteger(port) || port < 1 || port > 65535) {
          reset(streamId, RST_PROTOCOL_ERROR);
          return;
        }
        byStream.set(streamId, { requestID, type });
        let p = pairs.get(requestID);
        if (!p) {
          p = { port, pending: [], clientDone: false, started: false };
          pairs.set(requestID, p);
        }
        if (type === "data") p.dataStream = streamId;
        else p.errorStream = streamId;
        if (p.dataStream !== undefined && p.errorStream !== undefined && !p.started) start(requestID, p);
        return;
      }
      case RST_STREAM: {
        const streamId = f.payload.readUInt32BE(0) & 0x7fffffff;
        const s = byStream.get(streamId);
        byStream.delete(streamId);
        if (s) {
          const p = pairs.get(s.requestID);
          p?.conn?.destroy();
          pairs.delete(s.requestID);
        }
        return;
      }
      case PING:
        send(controlFrame(PING, 0, f.payload));
        return;
      case GOAWAY:
        return shutdown("client GOAWAY");
      default:
        // SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do for port-forward
        return;
    }
  };

  ws.on("message", (raw: Buffer) => {
    let frames: Frame[];
    try {
      frames = reader.push(Buffer.isBuffer(raw) ? raw : Buffer.from(raw));
    } catch (err) {
      return shutdown(String(err));
    }
    for (const f of frames) chain = chain.then(() => handle(f)).catch((err) => shutdown(String(err)));
  });
  ws.on("close", () => {
    closed = true;
    codec.close();
    for (const p of pairs.values()) p.conn?.destroy();
    pairs.clear();
  });
}
