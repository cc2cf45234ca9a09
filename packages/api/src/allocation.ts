// The field errors kube-apiserver's ClusterIP and NodePort allocators return, so the API server's
// allocators (which run before validation, as in kube) answer in the same words.
import { invalid, type FieldError } from "./field.ts";

export function nodePortNotInRange(portIndex: number, nodePort: number, range: string): FieldError {
  return invalid(
    `spec.ports[${portIndex}].nodePort`,
    nodePort,
    `provided port is not in the valid range. The range of valid ports is ${range}`,
  );
}

export function nodePortAllocated(portIndex: number, nodePort: number): FieldError {
  return invalid(`spec.ports[${portIndex}].nodePort`, nodePort, "provided port is already allocated");
}

export function healthCheckNodePortAllocated(nodePort: number): FieldError {
  return invalid("spec.healthCheckNodePort", nodePort, "provided port is already allocated");
}

/** No free port left in the range. */
export function nodePortRangeFull(portIndex: number, nodePort: number): FieldError {
  return invalid(`spec.ports[${portIndex}].nodePort`, nodePort, "range is full");
}

export function clusterIPNotInRange(clusterIPs: string[], ip: string, cidr: string): FieldError {
  return invalid(
    "spec.clusterIPs",
    clusterIPs,
    `failed to allocate IP ${ip}: the provided IP (${ip}) is not in the valid range. The range of valid IPs is ${cidr}`,
  );
}

export function clusterIPAllocated(clusterIPs: string[], ip: string): FieldError {
  return invalid(
    "spec.clusterIPs",
    clusterIPs,
    `failed to allocate IP ${ip}: provided IP is already allocated`,
  );
}
