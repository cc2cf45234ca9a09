/**
 * kubelet's container restart back-off (flowcontrol.Backoff with 10 s initial, 5 min cap):
 * the first restart is immediate, the next waits 10 s, then 20 s, 40 s … 300 s. An entry idle for
 * twice the cap is forgotten, which resets the back-off of a container that ran long enough.
 */
export const INITIAL_BACKOFF_MS = 10_000;
export const MAX_BACKOFF_MS = 300_000;

interface Entry {
  backoffMs: number;
  lastUpdate: number;
}

export class Backoff {
  private entries = new Map<string, Entry>();
  constructor(
    private readonly initialMs = INITIAL_BACKOFF_MS,
    private readonly maxMs = MAX_BACKOFF_MS,
  ) {}

  /** The current back-off of the key, 0 if none. */
  get(key: string): number {
    return this.entries.get(key)?.backoffMs ?? 0;
  }

  /** True while `now` is inside the back-off window that started when the container finished. */
  isInBackOffSince(key: string, finishedAt: number, now: number): boolean {
    const e = this.entries.get(key);
    if (!e) return false;
    if (now - e.lastUpdate > 2 * this.maxMs) {
      this.entries.delete(key);
      return false;
    }
    return now - finishedAt < e.backoffMs;
  }

  /** Records a restart and grows the window for the next one. */
  next(key: string, now: number): void {
    const e = this.entries.get(key);
    if (!e || now - e.lastUpdate > 2 * this.maxMs)
      this.entries.set(key, { backoffMs: this.initialMs, lastUpdate: now });
    else this.entries.set(key, { backoffMs: Math.min(e.backoffMs * 2, this.maxMs), lastUpdate: now });
  }

  /** When the container may be restarted (finishedAt + current window). */
  readyAt(key: string, finishedAt: number): number {
    return finishedAt + this.get(key);
  }

  forget(key: string): void {
    this.entries.delete(key);
  }
}

/** "10s", "1m20s", "5m0s" as Go prints a time.Duration in kubelet's message. */
export function formatGoDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return `${m}m${s % 60}s`;
}

export function crashLoopMessage(
  backoffMs: number,
  container: string,
  podName: string,
  namespace: string,
  uid: string,
): string {
  return `back-off ${formatGoDuration(backoffMs)} restarting failed container=${container} pod=${podName}_${namespace}(${uid})`;
}
