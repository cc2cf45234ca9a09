// What every controller is given: the API client, the shared informers, the event recorder,
// logging, metrics and the control plane's settings. Nothing is reached through globals.
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { KubeClient } from "@klab/client";
import type { EventRecorder } from "./events.ts";
import type { ControllerMetrics, InformerFactory } from "./runtime.ts";

export interface ControllerSettings {
  /** --cluster-cidr: pod CIDRs for nodes are cut from it. */
  clusterCIDR: string;
  /** --node-cidr-mask-size */
  nodeCIDRMaskSize: number;
  serviceCIDR: string;
  /** Where the `kubernetes` Service's endpoints point. */
  advertiseAddress: string;
  securePort: number;
  /** --node-monitor-grace-period: a node whose heartbeat is older than this becomes Unknown. */
  nodeMonitorGracePeriodMs: number;
  /** --node-startup-grace-period: how long a new node may take to post its first status. */
  nodeStartupGracePeriodMs: number;
  /** --node-monitor-period */
  nodeMonitorPeriodMs: number;
  /** How often the ClusterIP/NodePort repair pass runs (kube: 3 minutes). */
  serviceRepairPeriodMs: number;
}

export const defaultSettings: Omit<ControllerSettings, "advertiseAddress" | "securePort"> = {
  clusterCIDR: "10.244.0.0/16",
  nodeCIDRMaskSize: 24,
  serviceCIDR: "10.96.0.0/12",
  nodeMonitorGracePeriodMs: 40_000,
  nodeStartupGracePeriodMs: 60_000,
  nodeMonitorPeriodMs: 5_000,
  serviceRepairPeriodMs: 180_000,
};

export interface ControllerContext {
  client: KubeClient;
  informers: InformerFactory;
  events: EventRecorder;
  logger: Logger;
  metrics: ControllerMetrics;
  registry: Registry;
  settings: ControllerSettings;
}

export interface RunningController {
  name: string;
  /** Called once every informer has synced. */
  start(): void;
  stop(): Promise<void>;
}
