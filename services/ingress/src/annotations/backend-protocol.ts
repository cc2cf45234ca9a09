/** backend-protocol: how the controller talks to the upstream. */
import { type AnnotationMap, AnnotationError, get } from "./common.ts";

export const BACKEND_PROTOCOLS = ["HTTP", "HTTPS", "AUTO_HTTP", "GRPC", "GRPCS", "FCGI"] as const;
export type BackendProtocol = (typeof BACKEND_PROTOCOLS)[number];

export function parse(a: AnnotationMap): BackendProtocol {
  const v = get(a, "backend-protocol");
  if (v === undefined || v === "") return "HTTP";
  const upper = v.toUpperCase();
  if ((BACKEND_PROTOCOLS as readonly string[]).includes(upper)) return upper as BackendProtocol;
  throw new AnnotationError("backend-protocol", `'${v}' is not one of ${BACKEND_PROTOCOLS.join(", ")}`);
}
