// The Metrics, Alerts and Trace pages' arithmetic: dashboards as data, Prometheus answers into
// series, values in their units, silences from an alert's labels, and a trace's waterfall.
// Pure functions, so lib/metrics.test.ts can check them without a browser.

import { bytes } from "./format";

// ---------------------------------------------------------------------------------------------
// Dashboards (monitoring/dashboards/*.json; the schema is in monitoring/README.md)

export type Unit =
  | "reqps"
  | "ops"
  | "ratio"
  | "seconds"
  | "bytes"
  | "bytes_per_second"
  | "tokens_per_second"
  | "count"
  | "celsius"
  | "watts";

export interface Query {
  expr: string;
  legend?: string;
}

export interface Panel {
  title: string;
  unit: Unit;
  description?: string;
  queries: Query[];
}

export interface Dashboard {
  id: string;
  title: string;
  description?: string;
  panels: Panel[];
}

// Read at build time: the dashboards ship inside the UI bundle, the same files Grafana's are
// generated from, so the two never disagree.
const files = import.meta.glob("../../../monitoring/dashboards/*.json", { eager: true, import: "default" });

/** Every shipped dashboard, in a stable order (the `services` one first: it is the usual start). */
export const DASHBOARDS: Dashboard[] = Object.values(files as Record<string, Dashboard>).sort((a, b) =>
  a.id === "services" ? -1 : b.id === "services" ? 1 : a.title.localeCompare(b.title),
);

export const RANGES = [
  { label: "15m", seconds: 15 * 60 },
  { label: "1h", seconds: 3600 },
  { label: "6h", seconds: 6 * 3600 },
  { label: "24h", seconds: 86400 },
  { label: "7d", seconds: 7 * 86400 },
] as const;

/** A step that gives about `points` samples over the range, never finer than the scrape interval. */
export function stepFor(rangeSeconds: number, points = 240, scrapeSeconds = 15): number {
  const raw = rangeSeconds / points;
  const nice = [15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  return Math.max(scrapeSeconds, nice.find((s) => s >= raw) ?? nice[nice.length - 1]);
}

// ---------------------------------------------------------------------------------------------
// Prometheus answers

export interface Series {
  name: string;
  labels: Record<string, string>;
  /** Unix seconds, value; NaN and ±Inf are left out (Prometheus writes them as strings). */
  points: [number, number][];
}

/** `{{service}} on {{gpu}}` with the series' labels; the label set itself without a template. */
export function legendName(template: string | undefined, labels: Record<string, string>): string {
  if (template) {
    return template.replace(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g, (_, name) => labels[name] ?? "");
  }
  const { __name__, ...rest } = labels;
  const inner = Object.entries(rest)
    .map(([k, v]) => `${k}="${v}"`)
    .join(", ");
  return `${__name__ ?? ""}{${inner}}`;
}

/** A `query_range` answer (`data.result` of a matrix) as named series. */
export function toSeries(answer: any, legend?: string): Series[] {
  const result: any[] = answer?.data?.result ?? [];
  return result.map((r) => ({
    name: legendName(legend, r.metric ?? {}),
    labels: r.metric ?? {},
    points: (r.values ?? [])
      .map(([t, v]: [number, string]) => [Number(t), Number(v)] as [number, number])
      .filter(([, v]: [number, number]) => Number.isFinite(v)),
  }));
}

// ---------------------------------------------------------------------------------------------
// Units

function trim(n: number, digits: number): string {
  return n.toLocaleString("en-US", { maximumFractionDigits: digits });
}

/** 1234 → "1.23k"; keeps small rates readable (0.05 req/s stays 0.05). */
function si(n: number): string {
  const abs = Math.abs(n);
  if (abs >= 1e9) return `${trim(n / 1e9, 2)}G`;
  if (abs >= 1e6) return `${trim(n / 1e6, 2)}M`;
  if (abs >= 1e3) return `${trim(n / 1e3, 2)}k`;
  if (abs === 0) return "0";
  if (abs < 0.01) return n.toExponential(1);
  return trim(n, abs < 1 ? 3 : 2);
}

function seconds(n: number): string {
  const abs = Math.abs(n);
  if (abs === 0) return "0 s";
  if (abs < 1e-3) return `${trim(n * 1e6, 0)} µs`;
  if (abs < 1) return `${trim(n * 1e3, abs < 0.01 ? 2 : 0)} ms`;
  if (abs < 120) return `${trim(n, 2)} s`;
  if (abs < 7200) return `${trim(n / 60, 1)} min`;
  if (abs < 172800) return `${trim(n / 3600, 1)} h`;
  return `${trim(n / 86400, 1)} d`;
}

/** A value as its panel's unit says it reads. */
export function formatValue(unit: Unit | string, n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  switch (unit) {
    case "bytes":
      return bytes(n);
    case "bytes_per_second":
      return `${bytes(n)}/s`;
    case "seconds":
      return seconds(n);
    case "ratio":
      return `${trim(n * 100, Math.abs(n) < 0.1 ? 2 : 1)}%`;
    case "reqps":
      return `${si(n)} req/s`;
    case "ops":
      return `${si(n)}/s`;
    case "tokens_per_second":
      return `${si(n)} tok/s`;
    case "celsius":
      return `${trim(n, 1)} °C`;
    case "watts":
      return `${trim(n, 1)} W`;
    default:
      return si(n);
  }
}

// ---------------------------------------------------------------------------------------------
// Drawing a panel

/** The smallest and largest value across series, with 0 in the range (areas read from zero). */
export function valueRange(series: Series[], unit: Unit | string): [number, number] {
  let lo = 0;
  let hi = 0;
  for (const s of series) {
    for (const [, v] of s.points) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  if (unit === "ratio" && hi <= 1 && hi > 0.5) hi = 1;
  if (hi === lo) hi = lo + 1;
  return [lo, hi];
}

/**
 * The SVG path of one series in a `width`×`height` box over [xMin, xMax] × [yMin, yMax]. A gap
 * longer than two steps (a restart, a scrape that failed) breaks the line instead of bridging it.
 */
export function seriesPath(
  points: [number, number][],
  box: { xMin: number; xMax: number; yMin: number; yMax: number; width: number; height: number; step: number },
): string {
  const { xMin, xMax, yMin, yMax, width, height, step } = box;
  const xSpan = xMax - xMin || 1;
  const ySpan = yMax - yMin || 1;
  let previous: number | null = null;
  const parts: string[] = [];
  for (const [t, v] of points) {
    const x = ((t - xMin) / xSpan) * width;
    const y = height - ((v - yMin) / ySpan) * height;
    const move = previous === null || t - previous > 2 * step;
    parts.push(`${move ? "M" : "L"}${x.toFixed(1)},${y.toFixed(1)}`);
    previous = t;
  }
  return parts.join(" ");
}

/** A colour per series index, distinct for the first ten and stable between refreshes. */
export function seriesColour(index: number): string {
  const palette = ["#3b82f6", "#ef4444", "#10b981", "#f59e0b", "#8b5cf6", "#06b6d4", "#ec4899", "#84cc16", "#f97316", "#64748b"];
  return palette[index % palette.length];
}

// ---------------------------------------------------------------------------------------------
// Alerts and silences

export interface Matcher {
  name: string;
  value: string;
  is_regex: boolean;
  is_equal: boolean;
}

/** Labels that vary per evaluation or say nothing about which alert this is. */
const NOT_IDENTIFYING = new Set(["severity", "__name__"]);

/** Matchers that silence exactly this alert: its identifying labels, equal. */
export function matchersFor(labels: Record<string, string>): Matcher[] {
  return Object.entries(labels)
    .filter(([name]) => !NOT_IDENTIFYING.has(name))
    .sort(([a], [b]) => (a === "alertname" ? -1 : b === "alertname" ? 1 : a.localeCompare(b)))
    .map(([name, value]) => ({ name, value, is_regex: false, is_equal: true }));
}

/** `1h`, `30m`, `2d`, `90s` → seconds; null for anything else. */
export function parseDuration(text: string): number | null {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$/.exec(text);
  if (!match) return null;
  const factor = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[match[2] as "s" | "m" | "h" | "d" | "w"];
  return Math.round(Number(match[1]) * factor);
}

/** Critical first, then warning, then the rest; newest first within a severity. */
export function severityRank(severity: string | undefined): number {
  return { critical: 0, warning: 1, info: 2 }[severity ?? ""] ?? 3;
}

// ---------------------------------------------------------------------------------------------
// Traces (GET /api/traces/{trace_id})

export interface Span {
  service: string;
  name: string;
  span_id: string;
  parent_id?: string | null;
  start_unix_nanos: number;
  duration_nanos: number;
  fields?: Record<string, unknown>;
}

/** A log line as the supervisor's trace view serves it (supervisor/src/up/traces.rs). */
export interface LogLine {
  service: string;
  span_id?: string | null;
  unix_nanos: number;
  /** TRACE DEBUG INFO WARN ERROR */
  level: string;
  target?: string;
  /** The message, then its key=value fields. */
  text: string;
}

export interface WaterfallRow {
  span: Span;
  depth: number;
  /** Fractions of the whole trace's time, 0..1. */
  offset: number;
  width: number;
}

/** A trace id as the appliance writes them: 32 lower-case hex digits, not all zero (W3C trace context). */
export function isTraceId(text: string): boolean {
  return /^[0-9a-f]{32}$/.test(text) && !/^0+$/.test(text);
}

/**
 * One row per span, each under its parent (children by start time), indented by depth. A span
 * whose parent is not in the trace (another service did not answer) is shown as a root.
 */
export function waterfall(spans: Span[]): { rows: WaterfallRow[]; start: number; end: number } {
  if (spans.length === 0) return { rows: [], start: 0, end: 0 };
  const start = Math.min(...spans.map((s) => s.start_unix_nanos));
  const end = Math.max(...spans.map((s) => s.start_unix_nanos + s.duration_nanos));
  const total = end - start || 1;
  const ids = new Set(spans.map((s) => s.span_id));
  const children = new Map<string | null, Span[]>();
  for (const span of spans) {
    const parent = span.parent_id && ids.has(span.parent_id) && span.parent_id !== span.span_id ? span.parent_id : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent)!.push(span);
  }
  for (const list of children.values()) list.sort((a, b) => a.start_unix_nanos - b.start_unix_nanos);
  const rows: WaterfallRow[] = [];
  const seen = new Set<string>();
  const place = (span: Span, depth: number) => {
    seen.add(span.span_id);
    rows.push({
      span,
      depth,
      offset: (span.start_unix_nanos - start) / total,
      width: Math.max(span.duration_nanos / total, 0),
    });
    visit(span.span_id, depth + 1);
  };
  const visit = (parent: string | null, depth: number) => {
    // A cycle in bad data must not hang the page.
    for (const span of children.get(parent) ?? []) if (!seen.has(span.span_id)) place(span, depth);
  };
  visit(null, 0);
  // Spans only reachable through a cycle are still shown, each unreached one as a root.
  for (const span of [...spans].sort((a, b) => a.start_unix_nanos - b.start_unix_nanos)) {
    if (!seen.has(span.span_id)) place(span, 0);
  }
  return { rows, start, end };
}

/** A duration in nanoseconds for people: `850 µs`, `12.3 ms`, `1.52 s`. */
export function nanos(n: number): string {
  if (!Number.isFinite(n)) return "—";
  if (n < 1e3) return `${Math.round(n)} ns`;
  if (n < 1e6) return `${trim(n / 1e3, 1)} µs`;
  if (n < 1e9) return `${trim(n / 1e6, 1)} ms`;
  return `${trim(n / 1e9, 2)} s`;
}

/** The same colour for a service wherever it appears (hue from a hash of its name). */
export function serviceColour(service: string): string {
  let hash = 0;
  for (const c of service) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return `hsl(${hash % 360} 65% 50%)`;
}
