/**
 * The preStop hook as kubelet's killContainer runs it: inside the termination grace period, before
 * the stop signal, so that a pod can keep serving while its endpoint is withdrawn. What the hook
 * leaves of the grace period goes to the stop signal, never less than 2 seconds.
 */
import type { LifecycleHandler } from "@klab/api";
import { runProbe, type ProbeTarget } from "./probes.ts";

/** kubelet's minimumGracePeriodInSeconds */
export const MINIMUM_GRACE_SECONDS = 2;

/** kubelet's event message: the hook's output stays out of events, where secrets could leak. */
export const PRE_STOP_FAILED = "PreStopHook failed";

export interface HookOutcome {
  elapsedSeconds: number;
  /** why the hook failed, in kubelet's words (for the log; the event says PRE_STOP_FAILED) */
  failure?: string;
  /** the grace period ran out before the hook finished (kubelet goes on with the stop signal) */
  timedOut: boolean;
}

/** Runs a preStop handler for at most `graceSeconds`. `podRef` is kubelet's `name_namespace(uid)`. */
export async function runPreStop(
  handler: LifecycleHandler,
  target: ProbeTarget,
  podRef: string,
  graceSeconds: number,
): Promise<HookOutcome> {
  const start = Date.now();
  const elapsed = () => (Date.now() - start) / 1000;
  if (handler.sleep) {
    const seconds = Math.max(0, handler.sleep.seconds);
    await new Promise((r) => setTimeout(r, Math.min(seconds, graceSeconds) * 1000));
    return { elapsedSeconds: elapsed(), timedOut: seconds > graceSeconds };
  }
  if (!handler.exec && !handler.httpGet && !handler.tcpSocket) return { elapsedSeconds: 0, timedOut: false };
  // The handlers are the probes' (exec in the container, httpGet/tcpSocket to the pod), bounded by the grace period.
  const r = await runProbe({ ...handler, timeoutSeconds: graceSeconds }, target);
  const took = elapsed();
  if (r.ok) return { elapsedSeconds: took, timedOut: false };
  if (took >= graceSeconds) return { elapsedSeconds: took, timedOut: true };
  const container = JSON.stringify(target.container.name);
  const failure = handler.exec
    ? `Exec lifecycle hook ([${(handler.exec.command ?? []).join(" ")}]) for Container ${container} in Pod "${podRef}" failed - error: ${r.output}`
    : handler.httpGet
      ? `HTTP lifecycle hook (${handler.httpGet.path ?? ""}) for Container ${container} in Pod "${podRef}" failed - error: ${r.output}`
      : `TCP lifecycle hook for Container ${container} in Pod "${podRef}" failed - error: ${r.output}`;
  return { elapsedSeconds: took, failure, timedOut: false };
}

/** The grace period the stop signal gets after a hook took `elapsedSeconds` of `graceSeconds`. */
export function graceAfterHook(graceSeconds: number, elapsedSeconds: number): number {
  return Math.max(MINIMUM_GRACE_SECONDS, graceSeconds - Math.floor(elapsedSeconds));
}
