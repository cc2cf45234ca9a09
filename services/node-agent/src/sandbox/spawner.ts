import { Worker } from "node:worker_threads";

/**
 * Runs short commands (ip, probes) from worker threads. Starting a child blocks the calling
 * thread until the child has exec'd (libuv reports exec errors synchronously), and on a loaded
 * machine that wait is long: from the agent's main thread, a node probing fifty pods every second
 * would spend its event loop waiting on forks, and pod syncs, watches and status writes with it.
 */
export interface SpawnRequest {
  argv: string[];
  env?: Record<string, string>;
  input?: string;
  timeoutMs: number;
  /** own process group, killed as a whole on timeout */
  detached?: boolean;
  /** output kept per stream (and combined) */
  maxBytes: number;
}

export interface SpawnResult {
  /** exit code; null when killed by a signal or not started */
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr in the order they arrived */
  out: string;
  timedOut: boolean;
  /** the command could not be started (ENOENT …) */
  error?: string;
}

// Plain JavaScript, evaluated as the worker's script: no TypeScript loader in the worker.
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { spawn } = require("node:child_process");
parentPort.on("message", (m) => {
  let stdout = "", stderr = "", out = "", timedOut = false, done = false, timer;
  const finish = (r) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    parentPort.postMessage({ id: m.id, stdout, stderr, out, timedOut, ...r });
  };
  let child;
  try {
    // stdin stays /dev/null unless there is input: bash reads ~/.bashrc when stdin is a socket
    // (its remote-shell check), and Node's pipes are sockets
    child = spawn(m.argv[0], m.argv.slice(1), {
      env: m.env,
      detached: !!m.detached,
      stdio: [m.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
  } catch (e) {
    return finish({ code: null, signal: null, error: String((e && e.message) || e) });
  }
  timer = setTimeout(() => {
    timedOut = true;
    try {
      if (m.detached) process.kill(-child.pid, "SIGKILL");
      else child.kill("SIGKILL");
    } catch {}
  }, m.timeoutMs);
  const take = (which) => (d) => {
    const s = d.toString();
    if (which === 1 && stdout.length < m.maxBytes) stdout += s;
    if (which === 2 && stderr.length < m.maxBytes) stderr += s;
    if (out.length < m.maxBytes) out += s;
  };
  child.stdout.on("data", take(1));
  child.stderr.on("data", take(2));
  if (child.stdin) child.stdin.on("error", () => {});
  child.on("error", (e) => finish({ code: null, signal: null, error: String(e.message) }));
  child.on("close", (code, signal) => finish({ code, signal }));
  if (child.stdin) child.stdin.end(m.input);
});
`;

interface Slot {
  worker: Worker;
  pending: Map<number, (r: SpawnResult) => void>;
}

const POOL = 2;
const slots: Array<Slot | undefined> = [];
let nextId = 1;
let turn = 0;

function slot(i: number): Slot {
  const existing = slots[i];
  if (existing) return existing;
  const worker = new Worker(WORKER_SOURCE, { eval: true });
  const s: Slot = { worker, pending: new Map() };
  worker.unref();
  worker.on("message", (m: SpawnResult & { id: number }) => {
    const done = s.pending.get(m.id);
    s.pending.delete(m.id);
    if (s.pending.size === 0) worker.unref();
    const { id: _id, ...result } = m;
    done?.(result);
  });
  const fail = (err: unknown) => {
    if (slots[i] === s) slots[i] = undefined;
    for (const done of s.pending.values())
      done({
        code: null,
        signal: null,
        stdout: "",
        stderr: "",
        out: "",
        timedOut: false,
        error: `command runner stopped: ${String(err)}`,
      });
    s.pending.clear();
  };
  worker.on("error", fail);
  worker.on("exit", (code) => fail(`exit ${code}`));
  slots[i] = s;
  return s;
}

/** Runs one command to completion from a worker thread; never rejects. */
export function spawnCollect(req: SpawnRequest): Promise<SpawnResult> {
  const s = slot(turn++ % POOL);
  const id = nextId++;
  return new Promise((resolve) => {
    s.pending.set(id, resolve);
    // a pending command keeps the process alive, as a child process would
    s.worker.ref();
    s.worker.postMessage({ id, ...req });
  });
}
