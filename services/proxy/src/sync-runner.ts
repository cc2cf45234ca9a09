// kube-proxy's BoundedFrequencyRunner: syncProxyRules runs when something changed, but never
// more often than minInterval (bursts of changes collapse into one sync) and at least every
// maxInterval (a missed event or a flushed table heals itself).

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export class BoundedFrequencyRunner {
  private lastRun = -Infinity;
  private timer: unknown;
  private timerAt = Infinity;
  private running = false;
  private pending = false;
  private stopped = true;

  constructor(
    private readonly fn: () => Promise<void> | void,
    readonly minIntervalMs: number,
    readonly maxIntervalMs: number,
    private readonly clock: Clock = realClock,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule(this.clock.now() + this.maxIntervalMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  /** Asks for a sync as soon as minInterval allows. */
  run(): void {
    if (this.stopped) return;
    if (this.running) {
      this.pending = true;
      return;
    }
    this.schedule(Math.max(this.clock.now(), this.lastRun + this.minIntervalMs));
  }

  /** After a failed sync: try again in `ms` (kube-proxy retries after syncPeriod). */
  retryAfter(ms: number): void {
    if (!this.stopped) this.schedule(this.clock.now() + ms);
  }

  private schedule(at: number): void {
    if (at >= this.timerAt) return;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = this.clock.setTimeout(() => void this.tick(), Math.max(0, at - this.clock.now()));
  }

  private async tick(): Promise<void> {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.stopped) return;
    this.running = true;
    this.lastRun = this.clock.now();
    try {
      await this.fn();
    } finally {
      this.running = false;
    }
    if (this.stopped) return;
    this.schedule(this.lastRun + this.maxIntervalMs);
    if (this.pending) {
      this.pending = false;
      this.run();
    }
  }
}
