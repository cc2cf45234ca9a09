/**
 * The active exercise, kept in the lab itself (ConfigMap kube-system/klab-scenario) so that every
 * `klab scenario` command, from any shell, sees the same one.
 */
import type { ConfigMap } from "@klab/api";
import { ApiError, type KubeClient } from "@klab/client";

export const STATE_NAMESPACE = "kube-system";
export const STATE_CONFIGMAP = "klab-scenario";

export interface ScenarioState {
  id: string;
  /** RFC 3339 time of `start`. */
  started: string;
  hintsShown: number;
}

export function stateToData(s: ScenarioState): Record<string, string> {
  return { id: s.id, started: s.started, hintsShown: String(s.hintsShown) };
}

export function stateFromData(data: Record<string, string> | undefined): ScenarioState | undefined {
  if (!data?.id) return undefined;
  const n = Number(data.hintsShown ?? "0");
  return { id: data.id, started: data.started ?? "", hintsShown: Number.isInteger(n) && n >= 0 ? n : 0 };
}

export async function readState(client: KubeClient): Promise<ScenarioState | undefined> {
  const cm = await client.get<ConfigMap>("v1", "configmaps", STATE_NAMESPACE, STATE_CONFIGMAP);
  return stateFromData(cm?.data);
}

export async function writeState(client: KubeClient, s: ScenarioState): Promise<void> {
  const data = stateToData(s);
  try {
    await client.create<ConfigMap>({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: STATE_CONFIGMAP,
        namespace: STATE_NAMESPACE,
        labels: { "app.kubernetes.io/managed-by": "klab" },
      },
      data,
    });
  } catch (err) {
    if (!(err instanceof ApiError && err.code === 409)) throw err;
    await client.patch("v1", "configmaps", STATE_NAMESPACE, STATE_CONFIGMAP, { data }, "merge");
  }
}

export async function deleteState(client: KubeClient): Promise<void> {
  await client.delete("v1", "configmaps", STATE_NAMESPACE, STATE_CONFIGMAP);
}
