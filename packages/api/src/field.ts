// Field errors as k8s.io/apimachinery/pkg/util/validation/field renders them, and the 422 Status
// kube-apiserver builds from them (errors.NewInvalid).
import type { ResourceType } from "./resources.ts";
import type { Status } from "./types.ts";

export type FieldErrorType =
  | "FieldValueInvalid"
  | "FieldValueRequired"
  | "FieldValueNotSupported"
  | "FieldValueDuplicate"
  | "FieldValueForbidden"
  | "FieldValueTooLong"
  | "FieldValueTooMany"
  | "FieldValueTypeInvalid"
  | "FieldValueNotFound"
  | "InternalError";

export interface FieldError {
  type: FieldErrorType;
  field: string;
  /** Left undefined when kube omits the value from the message; null renders as `null`. */
  badValue?: unknown;
  detail: string;
}

const typeText: Record<FieldErrorType, string> = {
  FieldValueInvalid: "Invalid value",
  FieldValueRequired: "Required value",
  FieldValueNotSupported: "Unsupported value",
  FieldValueDuplicate: "Duplicate value",
  FieldValueForbidden: "Forbidden",
  FieldValueTooLong: "Too long",
  FieldValueTooMany: "Too many",
  FieldValueTypeInvalid: "Invalid value",
  FieldValueNotFound: "Not found",
  InternalError: "Internal error",
};

export function invalid(field: string, badValue: unknown, detail: string): FieldError {
  return { type: "FieldValueInvalid", field, badValue, detail };
}

export function required(field: string, detail = ""): FieldError {
  return { type: "FieldValueRequired", field, detail };
}

export function forbidden(field: string, detail: string): FieldError {
  return { type: "FieldValueForbidden", field, detail };
}

export function duplicate(field: string, badValue: unknown): FieldError {
  return { type: "FieldValueDuplicate", field, badValue, detail: "" };
}

export function notFound(field: string, badValue: unknown): FieldError {
  return { type: "FieldValueNotFound", field, badValue, detail: "" };
}

export function notSupported(field: string, badValue: unknown, supported: readonly string[]): FieldError {
  const detail = supported.length ? "supported values: " + supported.map((v) => goQuote(v)).join(", ") : "";
  return { type: "FieldValueNotSupported", field, badValue, detail };
}

export function tooLong(field: string, maxLength: number): FieldError {
  const detail =
    maxLength >= 0
      ? `may not be more than ${maxLength} ${maxLength === 1 ? "byte" : "bytes"}`
      : "value is too long";
  return { type: "FieldValueTooLong", field, detail };
}

export function tooMany(field: string, actual: number, max: number): FieldError {
  return { type: "FieldValueTooMany", field, badValue: actual, detail: `must have at most ${max} items` };
}

export function typeInvalid(field: string, badValue: unknown, detail: string): FieldError {
  return { type: "FieldValueTypeInvalid", field, badValue, detail };
}

/** strconv.Quote: Go's double-quoted string literal. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\r") out += "\\r";
    else if (c === 7) out += "\\a";
    else if (c === 8) out += "\\b";
    else if (c === 12) out += "\\f";
    else if (c === 11) out += "\\v";
    else if (c < 0x20 || c === 0x7f) out += "\\x" + c.toString(16).padStart(2, "0");
    else if (c >= 0x80 && c <= 0x9f) out += "\\u00" + c.toString(16).padStart(2, "0");
    else out += ch;
  }
  return out + '"';
}

/**
 * A bad value whose Go rendering (`%#v` of a struct or map) is spelled out by the validator, so the
 * message matches kube-apiserver's byte for byte; serialises to JSON as its `value`.
 */
export class GoLiteral {
  constructor(
    readonly text: string,
    readonly value?: unknown,
  ) {}
  toJSON(): unknown {
    return this.value ?? this.text;
  }
}

/** `map[string]string{"a":"b", "c":"d"}` as Go's %#v prints a string map (keys sorted). */
export function goStringMap(m: Record<string, string> | undefined | null): GoLiteral {
  if (m === undefined || m === null) return new GoLiteral("map[string]string(nil)", m);
  const keys = Object.keys(m).sort();
  return new GoLiteral(
    `map[string]string{${keys.map((k) => `${goQuote(k)}:${goQuote(m[k])}`).join(", ")}}`,
    m,
  );
}

/** How Go's fmt prints the bad value: %v for simple types, %q for strings, %#v otherwise. */
function formatValue(v: unknown): string {
  if (v === null) return "null";
  if (v instanceof GoLiteral) return v.text;
  if (typeof v === "string") return goQuote(v);
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x === "string")) return `[]string{${v.map((x) => goQuote(x)).join(", ")}}`;
    if (v.every((x) => typeof x === "number")) return `[]int32{${v.join(", ")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

/** field.Error.ErrorBody(): the message without the field path. */
export function fieldErrorBody(e: FieldError): string {
  let s = typeText[e.type];
  const valueOmitted =
    e.type === "FieldValueRequired" ||
    e.type === "FieldValueForbidden" ||
    e.type === "FieldValueTooLong" ||
    e.type === "InternalError" ||
    e.badValue === undefined;
  if (!valueOmitted) s += ": " + formatValue(e.badValue);
  if (e.detail) s += ": " + e.detail;
  return s;
}

/** field.Error.Error(): `<path>: <body>`. */
export function fieldErrorMessage(e: FieldError): string {
  return `${e.field}: ${fieldErrorBody(e)}`;
}

/** utilerrors.Aggregate.Error(): one message alone, several deduplicated inside [a, b]. */
export function aggregateMessage(messages: string[]): string {
  const seen: string[] = [];
  for (const m of messages) if (!seen.includes(m)) seen.push(m);
  if (seen.length === 0) return "";
  if (seen.length === 1) return seen[0];
  return "[" + seen.join(", ") + "]";
}

/** schema.GroupKind.String(): `Kind` for the core group, `Kind.group` otherwise. */
export function qualifiedKind(resource: Pick<ResourceType, "group" | "kind">): string {
  return resource.group ? `${resource.kind}.${resource.group}` : resource.kind;
}

/** errors.NewInvalid: the 422 Status kube-apiserver answers a create or update that fails validation. */
export function invalidStatus(resource: ResourceType, name: string, errors: FieldError[]): Status {
  const agg = aggregateMessage(errors.map(fieldErrorMessage));
  const what = `${qualifiedKind(resource)} ${goQuote(name)} is invalid`;
  return {
    apiVersion: "v1",
    kind: "Status",
    metadata: {},
    status: "Failure",
    message: agg ? `${what}: ${agg}` : what,
    reason: "Invalid",
    details: {
      name,
      group: resource.group || undefined,
      kind: resource.kind,
      causes: errors.map((e) => ({ reason: e.type, message: fieldErrorBody(e), field: e.field })),
    },
    code: 422,
  };
}
