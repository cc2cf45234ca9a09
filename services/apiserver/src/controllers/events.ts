// Events as client-go's EventRecorder writes them: named <object>.<hex nanoseconds>, and a
// repeat of the same reason and message for the same object bumps `count` and `lastTimestamp`
// instead of adding a new Event (the event correlator).
import type { Logger } from "pino";
import type { Event, KubeObject, ObjectReference } from "@klab/api";
import type { KubeClient } from "@klab/client";

export type EventType = "Normal" | "Warning";

export function referenceTo(obj: KubeObject): ObjectReference {
  const ref: ObjectReference = { kind: obj.kind, name: obj.metadata.name, apiVersion: obj.apiVersion };
  if (obj.metadata.namespace) ref.namespace = obj.metadata.namespace;
  if (obj.metadata.uid) ref.uid = obj.metadata.uid;
  if (obj.metadata.resourceVersion) ref.resourceVersion = obj.metadata.resourceVersion;
  return ref;
}

/** Event name: kube's fmt.Sprintf("%v.%x", ref.Name, time.Now().UnixNano()). */
export function eventName(objectName: string, nowMs: number, counter: number): string {
  const nanos = BigInt(nowMs) * 1_000_000n + BigInt(counter % 1_000_000);
  return `${objectName}.${nanos.toString(16)}`;
}

export function buildEvent(
  obj: KubeObject,
  type: EventType,
  reason: string,
  message: string,
  component: string,
  now: Date,
  counter: number,
): Event {
  const ts = now.toISOString().replace(/\.\d+Z$/, "Z");
  return {
    apiVersion: "v1",
    kind: "Event",
    metadata: {
      name: eventName(obj.metadata.name ?? "unknown", now.getTime(), counter),
      namespace: obj.metadata.namespace ?? "default",
    },
    involvedObject: referenceTo(obj),
    reason,
    message,
    source: { component },
    firstTimestamp: ts,
    lastTimestamp: ts,
    count: 1,
    type,
    eventTime: null,
    reportingComponent: component,
    reportingInstance: "",
  };
}

interface Seen {
  name: string;
  namespace: string;
  count: number;
}

export class EventRecorder {
  private readonly seen = new Map<string, Seen>();
  private counter = 0;

  constructor(
    private readonly client: KubeClient,
    private readonly logger: Logger,
  ) {}

  /** Records an event; never throws (an event that cannot be written is logged and dropped). */
  emit(component: string, obj: KubeObject, type: EventType, reason: string, message: string): void {
    void this.write(component, obj, type, reason, message).catch((err: Error) =>
      this.logger.debug({ err: err.message, reason }, "could not write event"),
    );
  }

  private async write(component: string, obj: KubeObject, type: EventType, reason: string, message: string) {
    const key = [
      component,
      obj.metadata.uid ?? "",
      obj.metadata.namespace ?? "",
      obj.metadata.name,
      type,
      reason,
      message,
    ].join("\0");
    const now = new Date();
    const prior = this.seen.get(key);
    if (prior) {
      prior.count++;
      try {
        await this.client.patch("v1", "events", prior.namespace, prior.name, {
          count: prior.count,
          lastTimestamp: now.toISOString().replace(/\.\d+Z$/, "Z"),
        });
        return;
      } catch {
        this.seen.delete(key);
      }
    }
    const ev = buildEvent(obj, type, reason, message, component, now, this.counter++);
    const created = await this.client.create(ev);
    if (this.seen.size > 4096) this.seen.delete(this.seen.keys().next().value!);
    this.seen.set(key, { name: created.metadata.name!, namespace: created.metadata.namespace!, count: 1 });
  }
}
