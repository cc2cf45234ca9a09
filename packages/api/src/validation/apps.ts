// apps/v1 validation (pkg/apis/apps/validation) with kube-apiserver's paths and messages.
import {
  forbidden,
  GoLiteral,
  goQuote,
  goStringMap,
  invalid,
  notSupported,
  required,
  type FieldError,
} from "../field.ts";
import { labelSelectorMatches } from "../selectors/labels.ts";
import type {
  DaemonSet,
  Deployment,
  IntOrString,
  LabelSelector,
  PodTemplateSpec,
  ReplicaSet,
} from "../types.ts";
import { validatePodSpec } from "./core.ts";
import {
  fieldImmutable,
  goLabelSelector,
  jsonEqual,
  validateAnnotations,
  validateLabelSelector,
  validateLabels,
  validateNonnegative,
} from "./meta.ts";
import { regexError } from "./strings.ts";

function goIntOrString(v: IntOrString | undefined): GoLiteral {
  if (typeof v === "string")
    return new GoLiteral(`intstr.IntOrString{Type:1, IntVal:0, StrVal:${goQuote(v)}}`, v);
  return new GoLiteral(`intstr.IntOrString{Type:0, IntVal:${v ?? 0}, StrVal:""}`, v ?? 0);
}

function positiveIntOrPercent(v: IntOrString | undefined, path: string): FieldError[] {
  if (v === undefined) return [];
  if (typeof v === "string") {
    return /^[0-9]+%$/.test(v)
      ? []
      : [
          invalid(
            path,
            goIntOrString(v),
            regexError(
              "a valid percent string must be a numeric string followed by an ending '%'",
              "[0-9]+%",
              "1%",
              "93%",
            ),
          ),
        ];
  }
  if (typeof v === "number") return validateNonnegative(v, path);
  return [invalid(path, v, "must be an integer or percentage (e.g '5%')")];
}

function intOrPercentValue(v: IntOrString | undefined): number {
  if (typeof v === "number") return v;
  if (typeof v === "string" && /^[0-9]+%$/.test(v)) return Number(v.slice(0, -1));
  return 0;
}

function notMoreThan100Percent(v: IntOrString | undefined, path: string): FieldError[] {
  return typeof v === "string" && /^[0-9]+%$/.test(v) && Number(v.slice(0, -1)) > 100
    ? [invalid(path, v, "must not be greater than 100%")]
    : [];
}

/** ValidatePodTemplateSpec: template labels/annotations and the pod spec. */
function validatePodTemplate(t: PodTemplateSpec | undefined, path: string): FieldError[] {
  if (!t) return [required(path, "")];
  return [
    ...validateLabels(t.metadata?.labels, `${path}.metadata.labels`),
    ...validateAnnotations(t.metadata?.annotations, `${path}.metadata.annotations`),
    ...validatePodSpec(t.spec, `${path}.spec`),
  ];
}

/** Whether the selector converts at all (LabelSelectorAsSelector succeeds). */
function selectorConverts(sel: LabelSelector | undefined): boolean {
  if (!sel) return true;
  return (sel.matchExpressions ?? []).every((e) =>
    e.operator === "In" || e.operator === "NotIn"
      ? (e.values ?? []).length > 0
      : e.operator === "Exists" || e.operator === "DoesNotExist",
  );
}

function isEmptySelector(sel: LabelSelector): boolean {
  return Object.keys(sel.matchLabels ?? {}).length + (sel.matchExpressions ?? []).length === 0;
}

function templateForReplicaSet(
  t: PodTemplateSpec | undefined,
  sel: LabelSelector | undefined,
  kind: string,
  path: string,
): FieldError[] {
  if (!t) return [required(path, "")];
  const errs: FieldError[] = [];
  // an empty selector matches everything, a missing one nothing
  if (!(sel && isEmptySelector(sel)) && !labelSelectorMatches(sel ?? null, t.metadata?.labels ?? {}))
    errs.push(
      invalid(
        `${path}.metadata.labels`,
        goStringMap(t.metadata?.labels),
        "`selector` does not match template `labels`",
      ),
    );
  errs.push(...validatePodTemplate(t, path));
  const rp = t.spec?.restartPolicy;
  if (rp !== undefined && rp !== "Always")
    errs.push(notSupported(`${path}.spec.restartPolicy`, rp, ["Always"]));
  if (t.spec?.activeDeadlineSeconds !== undefined)
    errs.push(
      forbidden(`${path}.spec.activeDeadlineSeconds`, `activeDeadlineSeconds in ${kind} is not Supported`),
    );
  return errs;
}

function replicaSelector(sel: LabelSelector | undefined, what: string, path: string): FieldError[] {
  if (!sel) return [required(path, "")];
  const errs = validateLabelSelector(sel, path);
  if (isEmptySelector(sel))
    errs.push(invalid(path, goLabelSelector(sel), `empty selector is invalid for ${what}`));
  return errs;
}

function immutableSelector(now: LabelSelector | undefined, was: LabelSelector | undefined): FieldError[] {
  return jsonEqual(now ?? null, was ?? null)
    ? []
    : [invalid("spec.selector", goLabelSelector(now), fieldImmutable)];
}

export function validateDeployment(d: Deployment, old?: Deployment): FieldError[] {
  const s = d.spec;
  if (!s) return [required("spec", "")];
  const errs: FieldError[] = [];
  errs.push(...validateNonnegative(s.replicas, "spec.replicas"));
  errs.push(...replicaSelector(s.selector, "deployment", "spec.selector"));
  if (!selectorConverts(s.selector))
    errs.push(invalid("spec.selector", goLabelSelector(s.selector), "invalid label selector"));
  else errs.push(...templateForReplicaSet(s.template, s.selector, "ReplicaSet", "spec.template"));
  const st = s.strategy ?? {};
  switch (st.type) {
    case "Recreate":
      if (st.rollingUpdate)
        errs.push(
          forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"),
        );
      break;
    case "RollingUpdate": {
      const ru = st.rollingUpdate;
      if (!ru) {
        errs.push(required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil"));
        break;
      }
      const p = "spec.strategy.rollingUpdate";
      errs.push(...positiveIntOrPercent(ru.maxUnavailable, `${p}.maxUnavailable`));
      errs.push(...positiveIntOrPercent(ru.maxSurge, `${p}.maxSurge`));
      if (intOrPercentValue(ru.maxUnavailable) === 0 && intOrPercentValue(ru.maxSurge) === 0)
        errs.push(
          invalid(
            `${p}.maxUnavailable`,
            goIntOrString(ru.maxUnavailable),
            "may not be 0 when `maxSurge` is 0",
          ),
        );
      errs.push(...notMoreThan100Percent(ru.maxUnavailable, `${p}.maxUnavailable`));
      break;
    }
    default:
      errs.push(
        notSupported(
          "spec.strategy",
          new GoLiteral(
            `apps.DeploymentStrategy{Type:${goQuote(String(st.type ?? ""))}, RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}`,
            st,
          ),
          ["Recreate", "RollingUpdate"],
        ),
      );
  }
  errs.push(...validateNonnegative(s.minReadySeconds, "spec.minReadySeconds"));
  errs.push(...validateNonnegative(s.revisionHistoryLimit, "spec.revisionHistoryLimit"));
  if (s.progressDeadlineSeconds !== undefined) {
    errs.push(...validateNonnegative(s.progressDeadlineSeconds, "spec.progressDeadlineSeconds"));
    if (s.progressDeadlineSeconds <= (s.minReadySeconds ?? 0))
      errs.push(
        invalid(
          "spec.progressDeadlineSeconds",
          s.progressDeadlineSeconds,
          "must be greater than minReadySeconds",
        ),
      );
  }
  if (old?.spec) errs.push(...immutableSelector(s.selector, old.spec.selector));
  return errs;
}

export function validateReplicaSet(rs: ReplicaSet, old?: ReplicaSet): FieldError[] {
  const s = rs.spec;
  if (!s) return [required("spec", "")];
  const errs: FieldError[] = [];
  errs.push(...validateNonnegative(s.replicas, "spec.replicas"));
  errs.push(...validateNonnegative(s.minReadySeconds, "spec.minReadySeconds"));
  // kube-apiserver says "deployment" here too
  errs.push(...replicaSelector(s.selector, "deployment", "spec.selector"));
  if (!selectorConverts(s.selector))
    errs.push(invalid("spec.selector", goLabelSelector(s.selector), "invalid label selector"));
  else errs.push(...templateForReplicaSet(s.template, s.selector, "ReplicaSet", "spec.template"));
  if (old?.spec) errs.push(...immutableSelector(s.selector, old.spec.selector));
  return errs;
}

export function validateDaemonSet(ds: DaemonSet, old?: DaemonSet): FieldError[] {
  const s = ds.spec;
  if (!s) return [required("spec", "")];
  const errs: FieldError[] = [];
  errs.push(...validateLabelSelector(s.selector, "spec.selector"));
  const sel = s.selector;
  if (
    selectorConverts(sel) &&
    !(sel && isEmptySelector(sel)) &&
    !labelSelectorMatches(sel ?? null, s.template?.metadata?.labels ?? {})
  )
    errs.push(
      invalid(
        "spec.template.metadata.labels",
        goStringMap(s.template?.metadata?.labels),
        "`selector` does not match template `labels`",
      ),
    );
  if (sel && isEmptySelector(sel))
    errs.push(invalid("spec.selector", goLabelSelector(sel), "empty selector is invalid for daemonset"));
  errs.push(...validatePodTemplate(s.template, "spec.template"));
  const rp = s.template?.spec?.restartPolicy;
  if (rp !== undefined && rp !== "Always")
    errs.push(notSupported("spec.template.spec.restartPolicy", rp, ["Always"]));
  if (s.template?.spec?.activeDeadlineSeconds !== undefined)
    errs.push(
      invalid(
        "spec.template.spec.activeDeadlineSeconds",
        s.template.spec.activeDeadlineSeconds,
        "activeDeadlineSeconds in DaemonSet is not Supported",
      ),
    );
  errs.push(...validateNonnegative(s.minReadySeconds, "spec.minReadySeconds"));
  const us = s.updateStrategy ?? {};
  const p = "spec.updateStrategy";
  switch (us.type) {
    case "OnDelete":
      break;
    case "RollingUpdate": {
      const ru = us.rollingUpdate;
      if (!ru) {
        errs.push(required(`${p}.rollingUpdate`, ""));
        break;
      }
      errs.push(...positiveIntOrPercent(ru.maxUnavailable, `${p}.rollingUpdate.maxUnavailable`));
      errs.push(...positiveIntOrPercent(ru.maxSurge, `${p}.rollingUpdate.maxSurge`));
      errs.push(...notMoreThan100Percent(ru.maxUnavailable, `${p}.rollingUpdate.maxUnavailable`));
      errs.push(...notMoreThan100Percent(ru.maxSurge, `${p}.rollingUpdate.maxSurge`));
      const hasUnavailable = intOrPercentValue(ru.maxUnavailable) !== 0;
      const hasSurge = intOrPercentValue(ru.maxSurge) !== 0;
      if (hasUnavailable && hasSurge)
        errs.push(
          invalid(
            `${p}.rollingUpdate.maxSurge`,
            goIntOrString(ru.maxSurge),
            "may not be set when maxUnavailable is non-zero",
          ),
        );
      else if (!hasUnavailable && !hasSurge)
        errs.push(required(`${p}.rollingUpdate.maxUnavailable`, "cannot be 0 when maxSurge is 0"));
      break;
    }
    default:
      errs.push(
        notSupported(
          p,
          new GoLiteral(
            `apps.DaemonSetUpdateStrategy{Type:${goQuote(String(us.type ?? ""))}, RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}`,
            us,
          ),
          ["RollingUpdate", "OnDelete"],
        ),
      );
  }
  errs.push(...validateNonnegative(s.revisionHistoryLimit, "spec.revisionHistoryLimit"));
  if (old?.spec) errs.push(...immutableSelector(s.selector, old.spec.selector));
  return errs;
}
