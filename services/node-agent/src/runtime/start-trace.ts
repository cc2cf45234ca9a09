/**
 * Where a pod's start time goes: milliseconds per phase, from the worker's first sync to the
 * status write that reported it Ready. Logged once per pod ("pod start phases"), so a benchmark
 * or an operator can see which step is slow without a profiler.
 */
export type StartPhase =
  "queued" | "volumes" | "netns" | "network" | "sandbox" | "spawn" | "readiness" | "status";

export class StartTrace {
  private readonly t0 = performance.now();
  private last = this.t0;
  readonly phases: Partial<Record<StartPhase, number>> = {};
  private done = false;

  /** Ends a phase now: the time since the previous mark is charged to it. */
  mark(phase: StartPhase): void {
    if (this.done) return;
    const t = performance.now();
    this.phases[phase] = Math.round((this.phases[phase] ?? 0) + (t - this.last));
    this.last = t;
  }

  /** Closes the trace; returns the phases and the total, once. */
  finish(): { phases: Partial<Record<StartPhase, number>>; totalMs: number } | undefined {
    if (this.done) return undefined;
    this.done = true;
    return { phases: this.phases, totalMs: Math.round(performance.now() - this.t0) };
  }
}
