export * from "./types.ts";
export * from "./resources.ts";
export * from "./field.ts";
export * from "./selectors/labels.ts";
export * from "./selectors/fields.ts";
export * from "./io.ts";
export * from "./validation/strings.ts";
