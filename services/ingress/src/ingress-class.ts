/**
 * Which Ingresses this controller serves, in ingress-nginx's order: spec.ingressClassName (which
 * must name an IngressClass of our controller), then the legacy kubernetes.io/ingress.class
 * annotation (must equal --ingress-class), then class-less ones: those belong to the default
 * IngressClass (admission would have written its name) or, with --watch-ingress-without-class, to us.
 */
import type { Ingress, IngressClass } from "@klab/api";

export const DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class";
export const LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class";

export interface ClassConfig {
  controllerClass: string;
  ingressClass: string;
  watchIngressWithoutClass: boolean;
}

/** The default IngressClass, when exactly one is marked (with two, admission rejects class-less Ingresses). */
export function defaultIngressClass(classes: readonly IngressClass[]): IngressClass | undefined {
  const defaults = classes.filter((c) => c.metadata.annotations?.[DEFAULT_CLASS_ANNOTATION] === "true");
  return defaults.length === 1 ? defaults[0] : undefined;
}

export function servedByUs(
  ing: Ingress,
  classes: readonly IngressClass[],
  cfg: ClassConfig,
): { served: boolean; reason: string } {
  const name = ing.spec?.ingressClassName;
  if (name) {
    const cls = classes.find((c) => c.metadata.name === name);
    if (!cls) return { served: false, reason: `IngressClass ${name} does not exist` };
    if (cls.spec?.controller !== cfg.controllerClass)
      return { served: false, reason: `IngressClass ${name} belongs to controller ${cls.spec?.controller}` };
    return { served: true, reason: `ingressClassName ${name}` };
  }
  const legacy = ing.metadata.annotations?.[LEGACY_CLASS_ANNOTATION];
  if (legacy !== undefined) {
    return legacy === cfg.ingressClass
      ? { served: true, reason: `annotation ${LEGACY_CLASS_ANNOTATION}=${legacy}` }
      : {
          served: false,
          reason: `annotation ${LEGACY_CLASS_ANNOTATION}=${legacy} is not ${cfg.ingressClass}`,
        };
  }
  const dflt = defaultIngressClass(classes);
  if (dflt && dflt.spec?.controller === cfg.controllerClass)
    return { served: true, reason: `default IngressClass ${dflt.metadata.name}` };
  if (cfg.watchIngressWithoutClass) return { served: true, reason: "watch-ingress-without-class" };
  return {
    served: false,
    reason: "no ingressClassName, no class annotation and no default IngressClass of this controller",
  };
}
