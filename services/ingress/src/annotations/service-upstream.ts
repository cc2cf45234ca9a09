/** service-upstream: proxy to the Service's ClusterIP:port as one upstream instead of its endpoints. */
import { type AnnotationMap, parseBool } from "./common.ts";

export function parse(a: AnnotationMap): boolean {
  return parseBool(a, "service-upstream", false);
}
