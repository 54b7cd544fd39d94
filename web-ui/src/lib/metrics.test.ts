import { describe, expect, test } from "vitest";

import {
  DASHBOARDS,
  formatValue,
  isTraceId,
  legendName,
  matchersFor,
  nanos,
  parseDuration,
  seriesPath,
  stepFor,
  toSeries,
  valueRange,
  waterfall,
  type Span,
} from "./metrics";

describe("dashboards", () => {
  test("every shipped dashboard is loaded, services first, and keeps to the schema", () => {
    expect(DASHBOARDS.length).toBeGreaterThanOrEqual(6);
    expect(DASHBOARDS[0].id).toBe("services");
    const units = ["reqps", "ops", "ratio", "seconds", "bytes", "bytes_per_second", "tokens_per_second", "count", "celsius", "watts"];
    for (const d of DASHBOARDS) {
      expect(d.panels.length, d.id).toBeGreaterThan(0);
      for (const p of d.panels) {
        expect(units, `${d.id}/${p.title}`).toContain(p.unit);
        expect(p.queries.length, `${d.id}/${p.title}`).toBeGreaterThan(0);
      }
    }
  });

  test("steps: about 240 points, never under the scrape interval", () => {
    for (const [range, step] of [
      [15 * 60, 15],
      [3600, 15],
      [6 * 3600, 120],
      [86400, 600],
      [7 * 86400, 3600],
    ]) {
      expect(stepFor(range), `${range}`).toBe(step);
      expect(range / stepFor(range)).toBeLessThanOrEqual(11000);
    }
  });
});

describe("series", () => {
  test("legends fill {{label}} placeholders; without one the label set names the series", () => {
    const labels = { __name__: "up", service: "gateway", gpu: "0" };
    for (const [template, name] of [
      ["{{service}}", "gateway"],
      ["{{ service }} on GPU {{gpu}}", "gateway on GPU 0"],
      ["{{missing}}x", "x"],
      [undefined, 'up{service="gateway", gpu="0"}'],
    ] as const) {
      expect(legendName(template, labels)).toBe(name);
    }
  });

  test("a matrix answer becomes series; NaN samples are left out", () => {
    const series = toSeries(
      {
        status: "success",
        data: {
          resultType: "matrix",
          result: [{ metric: { service: "a" }, values: [[100, "1"], [115, "NaN"], [130, "+Inf"], [145, "2.5"]] }],
        },
      },
      "{{service}}",
    );
    expect(series).toEqual([{ name: "a", labels: { service: "a" }, points: [[100, 1], [145, 2.5]] }]);
    expect(toSeries(null)).toEqual([]);
  });

  test("a gap longer than two steps breaks the line", () => {
    const box = { xMin: 0, xMax: 100, yMin: 0, yMax: 10, width: 100, height: 10, step: 10 };
    expect(seriesPath([[0, 0], [10, 10], [50, 5], [60, 0]], box)).toBe("M0.0,10.0 L10.0,0.0 M50.0,5.0 L60.0,10.0");
  });

  test("value ranges start at zero; a ratio near full reads up to 100%", () => {
    expect(valueRange([{ name: "", labels: {}, points: [[0, 0.7]] }], "ratio")).toEqual([0, 1]);
    expect(valueRange([{ name: "", labels: {}, points: [[0, 5], [1, -2]] }], "count")).toEqual([-2, 5]);
    expect(valueRange([], "count")).toEqual([0, 1]);
  });
});

describe("units", () => {
  test.each([
    ["bytes", 1536, "1.50 KiB"],
    ["bytes_per_second", 1048576, "1.00 MiB/s"],
    ["seconds", 0.0042, "4.2 ms"],
    ["seconds", 0.25, "250 ms"],
    ["seconds", 42, "42 s"],
    ["seconds", 5400, "90 min"],
    ["ratio", 0.873, "87.3%"],
    ["ratio", 0.0012, "0.12%"],
    ["reqps", 1234, "1.23k req/s"],
    ["reqps", 0.05, "0.05 req/s"],
    ["ops", 0, "0/s"],
    ["tokens_per_second", 85.26, "85.26 tok/s"],
    ["celsius", 71.25, "71.3 °C"],
    ["watts", 300, "300 W"],
    ["count", 2500000, "2.5M"],
    ["count", Number.NaN, "—"],
  ])("%s %s → %s", (unit, value, text) => {
    expect(formatValue(unit, value)).toBe(text);
  });
});

describe("alerts", () => {
  test("a silence from an alert matches its identifying labels, alertname first", () => {
    expect(matchersFor({ unit: "gateway", severity: "critical", alertname: "ServiceDown" })).toEqual([
      { name: "alertname", value: "ServiceDown", is_regex: false, is_equal: true },
      { name: "unit", value: "gateway", is_regex: false, is_equal: true },
    ]);
  });

  test.each([
    ["1h", 3600],
    ["30m", 1800],
    [" 2d ", 172800],
    ["1.5h", 5400],
    ["90", null],
    ["h", null],
    ["-1h", null],
  ])("duration %s → %s", (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });
});

describe("traces", () => {
  const span = (span_id: string, parent_id: string | null, start: number, duration: number, service = "gateway"): Span => ({
    service,
    name: span_id,
    span_id,
    parent_id,
    start_unix_nanos: start,
    duration_nanos: duration,
  });

  test("rows follow the tree, children by start time, bars as fractions of the trace", () => {
    const { rows, start, end } = waterfall([
      span("c2", "root", 600, 200, "router"),
      span("root", null, 0, 1000),
      span("c1", "root", 100, 400, "router"),
      span("g1", "c1", 200, 100, "swapper"),
    ]);
    expect([start, end]).toEqual([0, 1000]);
    expect(rows.map((r) => [r.span.span_id, r.depth, r.offset, r.width])).toEqual([
      ["root", 0, 0, 1],
      ["c1", 1, 0.1, 0.4],
      ["g1", 2, 0.2, 0.1],
      ["c2", 1, 0.6, 0.2],
    ]);
  });

  test("a span whose parent is missing is a root; a cycle neither hangs nor hides spans", () => {
    const { rows } = waterfall([span("a", "gone", 0, 10), span("b", "c", 5, 5), span("c", "b", 6, 1)]);
    expect(rows.map((r) => [r.span.span_id, r.depth])).toEqual([["a", 0], ["b", 0], ["c", 1]]);
    expect(waterfall([]).rows).toEqual([]);
  });

  test("trace ids and durations", () => {
    expect(isTraceId("4bf92f3577b34da6a3ce929d0e0e4736")).toBe(true);
    expect(isTraceId("4BF92F3577B34DA6A3CE929D0E0E4736")).toBe(false);
    expect(isTraceId("../../etc")).toBe(false);
    expect(isTraceId("0".repeat(32))).toBe(false);
    expect([nanos(850), nanos(12_345), nanos(12_300_000), nanos(1_520_000_000)]).toEqual(["850 ns", "12.3 µs", "12.3 ms", "1.52 s"]);
  });
});
