/** use-regex: any location of a host with it turns the whole host into regex mode (see paths.ts). */
import { type AnnotationMap, parseBool } from "./common.ts";

export function parse(a: AnnotationMap): boolean {
  return parseBool(a, "use-regex", false);
}
