export { humanDuration, translateTimestampSince } from "./duration.ts";
export { summarizePod, type PodSummary } from "./pod.ts";
export {
  formatEndpoints,
  printTable,
  tableColumns,
  type PrintedRow,
  type PrintedTable,
  type PrintOptions,
} from "./table.ts";
