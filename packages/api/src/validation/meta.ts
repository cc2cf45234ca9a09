// ObjectMeta, labels, annotations and label selectors, validated as apimachinery validates them.
import {
  forbidden,
  GoLiteral,
  goQuote,
  goStringMap,
  invalid,
  notSupported,
  required,
  tooLong,
  type FieldError,
} from "../field.ts";
import type { LabelSelector, ObjectMeta } from "../types.ts";
import { isQualifiedName, isValidLabelValue, nameIsDNSLabel, type NameValidator } from "./strings.ts";

export const fieldImmutable = "field is immutable";
const totalAnnotationSizeLimit = 256 * 1024;

export function validateLabels(labels: Record<string, string> | undefined, path: string): FieldError[] {
  const errs: FieldError[] = [];
  for (const [k, v] of Object.entries(labels ?? {})) {
    for (const m of isQualifiedName(k)) errs.push(invalid(path, k, m));
    if (typeof v !== "string") {
      errs.push(invalid(path, v, "must be a string"));
      continue;
    }
    for (const m of isValidLabelValue(v)) errs.push(invalid(path, v, m));
  }
  return errs;
}

export function validateAnnotations(ann: Record<string, string> | undefined, path: string): FieldError[] {
  const errs: FieldError[] = [];
  let size = 0;
  for (const [k, v] of Object.entries(ann ?? {})) {
    // annotation keys are qualified names, case-insensitively
    for (const m of isQualifiedName(k.toLowerCase())) errs.push(invalid(path, k, m));
    size += Buffer.byteLength(k) + Buffer.byteLength(String(v ?? ""));
  }
  if (size > totalAnnotationSizeLimit) errs.push(tooLong(path, totalAnnotationSizeLimit));
  return errs;
}

export function validateNonnegative(value: number | undefined, path: string): FieldError[] {
  return value !== undefined && value < 0 ? [invalid(path, value, "must be greater than or equal to 0")] : [];
}

/** apimachinery ValidateObjectMeta: name (per kind's rule), namespace presence, labels, annotations... */
export function validateObjectMeta(
  meta: ObjectMeta | undefined,
  requiresNamespace: boolean,
  nameFn: NameValidator,
  path = "metadata",
): FieldError[] {
  const m = meta ?? {};
  const errs: FieldError[] = [];
  if (m.generateName)
    for (const msg of nameFn(m.generateName, true))
      errs.push(invalid(`${path}.generateName`, m.generateName, msg));
  if (!m.name) errs.push(required(`${path}.name`, "name or generateName is required"));
  else for (const msg of nameFn(m.name, false)) errs.push(invalid(`${path}.name`, m.name, msg));
  if (requiresNamespace) {
    if (!m.namespace) errs.push(required(`${path}.namespace`, ""));
    else
      for (const msg of nameIsDNSLabel(m.namespace, false))
        errs.push(invalid(`${path}.namespace`, m.namespace, msg));
  } else if (m.namespace) {
    errs.push(forbidden(`${path}.namespace`, "not allowed on this type"));
  }
  errs.push(...validateNonnegative(m.generation, `${path}.generation`));
  errs.push(...validateLabels(m.labels, `${path}.labels`));
  errs.push(...validateAnnotations(m.annotations, `${path}.annotations`));
  // kube reports owner reference problems on the list itself, without an index
  for (const o of m.ownerReferences ?? []) {
    const p = `${path}.ownerReferences`;
    const version = (o.apiVersion ?? "").split("/").pop() ?? "";
    if (!version) errs.push(invalid(`${p}.apiVersion`, o.apiVersion ?? "", "version must not be empty"));
    if (!o.kind) errs.push(invalid(`${p}.kind`, o.kind ?? "", "kind must not be empty"));
    if (!o.name) errs.push(invalid(`${p}.name`, o.name ?? "", "name must not be empty"));
    if (!o.uid) errs.push(invalid(`${p}.uid`, o.uid ?? "", "uid must not be empty"));
  }
  const controllers = (m.ownerReferences ?? []).filter((o) => o.controller);
  if (controllers.length > 1)
    errs.push(
      invalid(
        `${path}.ownerReferences`,
        new GoLiteral("[]v1.OwnerReference{...}", m.ownerReferences),
        `Only one reference can have Controller set to true. Found "true" in references for [${controllers
          .map((c) => `${c.kind}/${c.name}`)
          .join(" ")}]`,
      ),
    );
  (m.finalizers ?? []).forEach((f, i) => {
    for (const msg of isQualifiedName(f)) errs.push(invalid(`${path}.finalizers[${i}]`, f, msg));
  });
  return errs;
}

/** ValidateObjectMetaUpdate: identity fields never change. */
export function validateObjectMetaUpdate(meta: ObjectMeta, old: ObjectMeta, path = "metadata"): FieldError[] {
  const errs: FieldError[] = [];
  if ((meta.name ?? "") !== (old.name ?? ""))
    errs.push(invalid(`${path}.name`, meta.name ?? "", fieldImmutable));
  if ((meta.namespace ?? "") !== (old.namespace ?? ""))
    errs.push(invalid(`${path}.namespace`, meta.namespace ?? "", fieldImmutable));
  if (old.uid && meta.uid && meta.uid !== old.uid)
    errs.push(invalid(`${path}.uid`, meta.uid, fieldImmutable));
  if (old.creationTimestamp && meta.creationTimestamp && meta.creationTimestamp !== old.creationTimestamp)
    errs.push(invalid(`${path}.creationTimestamp`, meta.creationTimestamp, fieldImmutable));
  return errs;
}

/** `v1.LabelSelector{MatchLabels:..., MatchExpressions:...}` as Go's %#v prints it in messages. */
export function goLabelSelector(sel: LabelSelector | undefined | null): GoLiteral {
  if (sel === undefined || sel === null) return new GoLiteral("null", null);
  const exprs = sel.matchExpressions;
  const e =
    exprs === undefined
      ? "[]v1.LabelSelectorRequirement(nil)"
      : `[]v1.LabelSelectorRequirement{${exprs
          .map(
            (x) =>
              `v1.LabelSelectorRequirement{Key:${goQuote(x.key ?? "")}, Operator:${goQuote(x.operator ?? "")}, Values:${
                x.values === undefined
                  ? "[]string(nil)"
                  : `[]string{${x.values.map((v) => goQuote(v)).join(", ")}}`
              }}`,
          )
          .join(", ")}}`;
  return new GoLiteral(
    `v1.LabelSelector{MatchLabels:${goStringMap(sel.matchLabels).text}, MatchExpressions:${e}}`,
    sel,
  );
}

/** unversioned ValidateLabelSelector. */
export function validateLabelSelector(sel: LabelSelector | undefined, path: string): FieldError[] {
  if (!sel) return [];
  const errs: FieldError[] = [];
  (sel.matchExpressions ?? []).forEach((r, i) => {
    const p = `${path}.matchExpressions[${i}]`;
    switch (r.operator) {
      case "In":
      case "NotIn":
        if (!r.values || r.values.length === 0)
          errs.push(required(`${p}.values`, "must be specified when `operator` is 'In' or 'NotIn'"));
        break;
      case "Exists":
      case "DoesNotExist":
        if (r.values && r.values.length > 0)
          errs.push(
            forbidden(`${p}.values`, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
          );
        break;
      default:
        errs.push(invalid(`${p}.operator`, r.operator, "not a valid selector operator"));
    }
    for (const m of isQualifiedName(r.key ?? "")) errs.push(invalid(`${p}.key`, r.key ?? "", m));
    (r.values ?? []).forEach((v, j) => {
      for (const m of isValidLabelValue(v)) errs.push(invalid(`${p}.values[${j}]`, v, m));
    });
  });
  errs.push(...validateLabels(sel.matchLabels, `${path}.matchLabels`));
  return errs;
}

export function validateEnum(
  value: string | undefined,
  path: string,
  allowed: readonly string[],
): FieldError[] {
  if (value === undefined || value === "") return [required(path, "")];
  return allowed.includes(value) ? [] : [notSupported(path, value, allowed)];
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Deep equality of JSON values, ignoring key order. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => jsonEqual(a[k], b[k]));
  }
  return false;
}
