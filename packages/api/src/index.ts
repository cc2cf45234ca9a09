export * from "./types.ts";
export * from "./resources.ts";
export * from "./field.ts";
export * from "./selectors/labels.ts";
export * from "./selectors/fields.ts";
export * from "./io.ts";
export * from "./validation/strings.ts";
export * from "./defaults.ts";
export { validateObject } from "./validation/validate.ts";
export {
  dropTypeDependentServiceFields,
  preserveAllocatedServiceFields,
  isConfigMapKey,
} from "./validation/core.ts";
export { validateLabelSelector, validateLabels, validateObjectMeta } from "./validation/meta.ts";
export * from "./allocation.ts";
export * from "./printers/index.ts";
export * from "./schema.ts";
export * from "./quantity.ts";
