// validateObject: the checks kube-apiserver runs on create (and, given the old object, on update)
// for every kind klab serves, returning field errors in kube's order and words.
import type { FieldError } from "../field.ts";
import { resourceForKind } from "../resources.ts";
import { decodeObject } from "../schema.ts";
import type {
  ConfigMap,
  DaemonSet,
  Deployment,
  Endpoints,
  EndpointSlice,
  Event,
  Ingress,
  IngressClass,
  KubeObject,
  Lease,
  NetworkPolicy,
  Node,
  Pod,
  ReplicaSet,
  Secret,
  Service,
} from "../types.ts";
import { validateDaemonSet, validateDeployment, validateReplicaSet } from "./apps.ts";
import {
  validateConfigMap,
  validateEndpoints,
  validateEvent,
  validateNode,
  validatePod,
  validateSecret,
  validateService,
} from "./core.ts";
import { validateObjectMeta, validateObjectMetaUpdate } from "./meta.ts";
import {
  validateEndpointSlice,
  validateIngress,
  validateIngressClass,
  validateLease,
  validateNetworkPolicy,
} from "./networking.ts";
import { nameIsDNS1035Label, nameIsDNSLabel, nameIsDNSSubdomain, type NameValidator } from "./strings.ts";

/** Which name rule each kind's registry applies (Services are DNS-1035 labels, Namespaces DNS-1123 labels). */
function nameRule(kind: string): NameValidator {
  if (kind === "Service") return nameIsDNS1035Label;
  if (kind === "Namespace") return nameIsDNSLabel;
  return nameIsDNSSubdomain;
}

/**
 * Validates an object as kube-apiserver does after defaulting (call applyDefaults first). With `old`,
 * adds the update rules (immutable fields). Allocated values (clusterIP, nodePorts) are the API
 * server's to fill before validating, as kube's service registry does.
 */
export function validateObject(obj: KubeObject, old?: KubeObject): FieldError[] {
  try {
    return validateUnchecked(obj, old);
  } catch (e) {
    // only a body of the wrong JSON shape gets here; decodeObject names the field
    const d = decodeObject(obj, obj?.kind ?? "", "", "Ignore");
    return [
      {
        type: "FieldValueTypeInvalid",
        field: "",
        badValue: undefined,
        detail:
          d.error?.replace(/^.*? cannot be handled as a \S+: /, "") ??
          `malformed object: ${(e as Error).message}`,
      },
    ];
  }
}

function validateUnchecked(obj: KubeObject, old?: KubeObject): FieldError[] {
  const rt = resourceForKind(obj.apiVersion, obj.kind);
  if (!rt) return [];
  const errs: FieldError[] = validateObjectMeta(obj.metadata, rt.namespaced, nameRule(rt.kind));
  if (old) errs.push(...validateObjectMetaUpdate(obj.metadata ?? {}, old.metadata ?? {}));
  switch (`${rt.group}/${rt.kind}`) {
    case "/Pod":
      errs.push(...validatePod(obj as Pod, old as Pod | undefined));
      break;
    case "/Service":
      errs.push(...validateService(obj as Service, old as Service | undefined));
      break;
    case "/Endpoints":
      errs.push(...validateEndpoints(obj as Endpoints));
      break;
    case "/Node":
      errs.push(...validateNode(obj as Node, old as Node | undefined));
      break;
    case "/ConfigMap":
      errs.push(...validateConfigMap(obj as ConfigMap, old as ConfigMap | undefined));
      break;
    case "/Secret":
      errs.push(...validateSecret(obj as Secret, old as Secret | undefined));
      break;
    case "/Event":
      errs.push(...validateEvent(obj as Event));
      break;
    case "apps/Deployment":
      errs.push(...validateDeployment(obj as Deployment, old as Deployment | undefined));
      break;
    case "apps/ReplicaSet":
      errs.push(...validateReplicaSet(obj as ReplicaSet, old as ReplicaSet | undefined));
      break;
    case "apps/DaemonSet":
      errs.push(...validateDaemonSet(obj as DaemonSet, old as DaemonSet | undefined));
      break;
    case "discovery.k8s.io/EndpointSlice":
      errs.push(...validateEndpointSlice(obj as EndpointSlice, old as EndpointSlice | undefined));
      break;
    case "networking.k8s.io/Ingress":
      errs.push(...validateIngress(obj as Ingress, old as Ingress | undefined));
      break;
    case "networking.k8s.io/IngressClass":
      errs.push(...validateIngressClass(obj as IngressClass, old as IngressClass | undefined));
      break;
    case "networking.k8s.io/NetworkPolicy":
      errs.push(...validateNetworkPolicy(obj as NetworkPolicy));
      break;
    case "coordination.k8s.io/Lease":
      errs.push(...validateLease(obj as Lease));
      break;
  }
  return errs;
}
