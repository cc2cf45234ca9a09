// Status errors worded as kube-apiserver words them (k8s.io/apimachinery/pkg/api/errors).
import type { Status, StatusDetails } from "@klab/api";

export class ApiError extends Error {
  constructor(readonly status: Status) {
    super(status.message);
  }
  get code(): number {
    return this.status.code ?? 500;
  }
}

export function statusOf(code: number, reason: string, message: string, details?: StatusDetails): Status {
  const s: Status = {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    code,
  };
  if (details) s.details = details;
  return s;
}

/** "pods", "deployments.apps" */
function qualified(group: string, plural: string): string {
  return group ? `${plural}.${group}` : plural;
}

function details(group: string, plural: string, name?: string): StatusDetails {
  const d: StatusDetails = {};
  if (name !== undefined) d.name = name;
  if (group) d.group = group;
  d.kind = plural;
  return d;
}

export const errors = {
  notFound: (group: string, plural: string, name: string) =>
    new ApiError(
      statusOf(
        404,
        "NotFound",
        `${qualified(group, plural)} "${name}" not found`,
        details(group, plural, name),
      ),
    ),
  alreadyExists: (group: string, plural: string, name: string) =>
    new ApiError(
      statusOf(
        409,
        "AlreadyExists",
        `${qualified(group, plural)} "${name}" already exists`,
        details(group, plural, name),
      ),
    ),
  conflict: (group: string, plural: string, name: string, why: string) =>
    new ApiError(
      statusOf(
        409,
        "Conflict",
        `Operation cannot be fulfilled on ${qualified(group, plural)} "${name}": ${why}`,
        details(group, plural, name),
      ),
    ),
  modified: (group: string, plural: string, name: string) =>
    errors.conflict(
      group,
      plural,
      name,
      "the object has been modified; please apply your changes to the latest version and try again",
    ),
  forbidden: (group: string, plural: string, name: string, why: string) =>
    new ApiError(
      statusOf(
        403,
        "Forbidden",
        `${qualified(group, plural)} "${name}" is forbidden: ${why}`,
        details(group, plural, name),
      ),
    ),
  badRequest: (message: string) => new ApiError(statusOf(400, "BadRequest", message)),
  unauthorized: () => new ApiError(statusOf(401, "Unauthorized", "Unauthorized")),
  methodNotAllowed: () =>
    new ApiError(
      statusOf(405, "MethodNotAllowed", "the server does not allow this method on the requested resource"),
    ),
  notAcceptable: (accepted: string) =>
    new ApiError(statusOf(406, "NotAcceptable", `only the following media types are accepted: ${accepted}`)),
  resourceNotFound: () =>
    new ApiError(statusOf(404, "NotFound", "the server could not find the requested resource")),
  expired: (message: string) => new ApiError(statusOf(410, "Expired", message)),
  tooLarge: (limit: number) =>
    new ApiError(statusOf(413, "RequestEntityTooLarge", `Request entity too large: limit is ${limit}`)),
  unsupportedMediaType: (types: string[]) =>
    new ApiError(
      statusOf(
        415,
        "UnsupportedMediaType",
        `the body of the request was in an unknown format - accepted media types include: ${types.join(", ")}`,
      ),
    ),
  invalid: (status: Status) => new ApiError(status),
  internal: (message: string) =>
    new ApiError(
      statusOf(500, "InternalError", `Internal error occurred: ${message}`, { causes: [{ message }] }),
    ),
};
