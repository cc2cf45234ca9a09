import { spawn } from "node:child_process";
import type { WebSocket } from "ws";
import * as pty from "node-pty";
import { CLOSE, ERROR, frame, parseIncoming, STDERR, STDIN, STDOUT } from "./channels.ts";
import { execResult, failure } from "./status.ts";

export interface ExecRequest {
  argv: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
  /** nsenter prefix into the pod */
  enter: string[];
  env: Record<string, string>;
}

/** Runs one exec session over an upgraded WebSocket and ends it with the exit status on channel 3. */
export function serveExec(ws: WebSocket, protocol: string, req: ExecRequest): void {
  const send = (ch: number, data: Buffer | string) => {
    if (ws.readyState === ws.OPEN) ws.send(frame(ch, data));
  };
  const finish = (code: number) => {
    send(ERROR, JSON.stringify(execResult(code, req.argv)));
    ws.close(1000);
  };
  const argv = [...req.enter, ...req.argv];
  if (req.tty) {
    let term: pty.IPty;
    try {
      term = pty.spawn(argv[0], argv.slice(1), {
        name: "xterm",
        cols: 80,
        rows: 24,
        env: { TERM: "xterm", ...req.env },
      });
    } catch (err) {
      send(
        ERROR,
        JSON.stringify(failure(500, "InternalError", `failed to start: ${(err as Error).message}`)),
      );
      ws.close(1000);
      return;
    }
    term.onData((d) => req.stdout && send(STDOUT, Buffer.from(d, "utf8")));
    term.onExit(({ exitCode, signal }) => finish(signal ? 128 + signal : exitCode));
    ws.on("message", (raw: Buffer) => {
      const m = parseIncoming(Buffer.isBuffer(raw) ? raw : Buffer.from(raw), protocol);
      if (m.kind === "stdin" && req.stdin) term.write(m.data.toString("utf8"));
      else if (m.kind === "resize" && m.width > 0 && m.height > 0) term.resize(m.width, m.height);
      else if (m.kind === "close" && m.channel === STDIN) term.write("\x04");
    });
    ws.on("close", () => {
      try {
        term.kill("SIGHUP");
      } catch {
        /* gone */
      }
    });
    return;
  }
  const child = spawn(argv[0], argv.slice(1), {
    env: req.env,
    stdio: [req.stdin ? "pipe" : "ignore", "pipe", "pipe"],
  });
  child.stdout!.on("data", (d: Buffer) => req.stdout && send(STDOUT, d));
  child.stderr!.on("data", (d: Buffer) => req.stderr && send(STDERR, d));
  child.stdin?.on("error", () => {});
  child.on("error", (err) => {
    send(ERROR, JSON.stringify(failure(500, "InternalError", `failed to start: ${err.message}`)));
    ws.close(1000);
  });
  child.on("close", (code, signal) => {
    const sig = signal
      ? (({ SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGHUP: 1 } as Record<string, number>)[signal] ?? 1)
      : 0;
    finish(signal ? 128 + sig : (code ?? 1));
  });
  ws.on("message", (raw: Buffer) => {
    const m = parseIncoming(Buffer.isBuffer(raw) ? raw : Buffer.from(raw), protocol);
    if (m.kind === "stdin" && child.stdin && !child.stdin.destroyed) child.stdin.write(m.data);
    else if (m.kind === "close" && m.channel === STDIN) child.stdin?.end();
  });
  ws.on("close", () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
}

export { CLOSE };
