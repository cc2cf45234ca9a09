// Matching a metav1.LabelSelector (as Deployments, ReplicaSets and DaemonSets carry it) and a
// plain map selector (as Services carry it) against an object's labels.
import type { LabelSelector } from "@klab/api";

export function selectorMatches(
  sel: LabelSelector | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  // An empty LabelSelector matches everything; a nil one matches nothing (metav1.LabelSelectorAsSelector).
  if (!sel) return false;
  const l = labels ?? {};
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (l[k] !== v) return false;
  for (const r of sel.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    const values = r.values ?? [];
    switch (r.operator) {
      case "In":
        if (!has || !values.includes(l[r.key]!)) return false;
        break;
      case "NotIn":
        if (has && values.includes(l[r.key]!)) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/** A Service's selector: every key must match; an empty one selects nothing (the Service is user-managed). */
export function mapSelectorMatches(
  sel: Record<string, string> | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  if (!sel || Object.keys(sel).length === 0) return false;
  const l = labels ?? {};
  return Object.entries(sel).every(([k, v]) => l[k] === v);
}
