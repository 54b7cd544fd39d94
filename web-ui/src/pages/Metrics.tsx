// The shipped dashboards (monitoring/dashboards/*.json), drawn from the appliance's own
// Prometheus through the supervisor's /api/monitoring/query_range.

import { useEffect, useState } from "preact/hooks";

import { ApiError, query, supervisor } from "../lib/api";
import {
  DASHBOARDS,
  formatValue,
  RANGES,
  seriesColour,
  seriesPath,
  stepFor,
  toSeries,
  valueRange,
  type Panel,
  type Series,
} from "../lib/metrics";
import { ErrorNote, Section } from "../components/ui";
import "./Monitoring.css";

const REFRESH = [
  { label: "off", ms: 0 },
  { label: "30s", ms: 30_000 },
  { label: "1m", ms: 60_000 },
  { label: "5m", ms: 300_000 },
];

/** The page's choices live in the URL, so a view can be bookmarked or sent. */
function fromUrl() {
  const params = new URLSearchParams(location.search);
  const dashboard = DASHBOARDS.find((d) => d.id === params.get("dashboard")) ?? DASHBOARDS[0];
  const range = RANGES.find((r) => r.label === params.get("range")) ?? RANGES[1];
  return { dashboard, range };
}

/** A 503 whose message says monitoring is off: the page says it once instead of per panel. */
export function offReason(error: unknown): string | null {
  return error instanceof ApiError && error.status === 503 && error.message.startsWith("monitoring is off")
    ? error.message
    : null;
}

export function Metrics() {
  const initial = fromUrl();
  const [dashboard, setDashboard] = useState(initial.dashboard);
  const [range, setRange] = useState<(typeof RANGES)[number]>(initial.range);
  const [refreshMs, setRefreshMs] = useState(60_000);
  const [end, setEnd] = useState(() => Math.floor(Date.now() / 1000));
  const [off, setOff] = useState<string | null>(null);

  useEffect(() => {
    history.replaceState(null, "", `${location.pathname}${query({ dashboard: dashboard.id, range: range.label })}`);
  }, [dashboard, range]);
  useEffect(() => {
    if (!refreshMs) return;
    const timer = setInterval(() => setEnd(Math.floor(Date.now() / 1000)), refreshMs);
    return () => clearInterval(timer);
  }, [refreshMs]);

  const now = () => {
    setOff(null);
    setEnd(Math.floor(Date.now() / 1000));
  };

  if (DASHBOARDS.length === 0) return <p class="muted">This build has no dashboards.</p>;
  return (
    <>
      <div class="row metrics-controls">
        <label>
          Dashboard
          <select
            value={dashboard.id}
            onChange={(e) => {
              setDashboard(DASHBOARDS.find((d) => d.id === e.currentTarget.value) ?? DASHBOARDS[0]);
              now();
            }}
          >
            {DASHBOARDS.map((d) => (
              <option value={d.id}>{d.title}</option>
            ))}
          </select>
        </label>
        <fieldset aria-label="Time range">
          {RANGES.map((r) => (
            <button
              type="button"
              aria-pressed={r === range}
              onClick={() => {
                setRange(r);
                now();
              }}
            >
              {r.label}
            </button>
          ))}
        </fieldset>
        <label>
          Refresh
          <select value={refreshMs} onChange={(e) => setRefreshMs(Number(e.currentTarget.value))}>
            {REFRESH.map((r) => (
              <option value={r.ms}>{r.label}</option>
            ))}
          </select>
        </label>
        <button type="button" onClick={now}>
          Now
        </button>
      </div>
      {dashboard.description ? <p class="hint">{dashboard.description}</p> : null}
      {off ? (
        <Section title="Monitoring">
          <p class="error" role="alert">
            {off}
          </p>
          <p class="hint">The Services page shows the prometheus unit and why it is not running.</p>
          <button type="button" onClick={now}>
            Try again
          </button>
        </Section>
      ) : (
        <div class="metrics-grid">
          {dashboard.panels.map((panel) => (
            <PanelView
              key={`${dashboard.id}/${panel.title}`}
              panel={panel}
              start={end - range.seconds}
              end={end}
              step={stepFor(range.seconds)}
              onOff={setOff}
            />
          ))}
        </div>
      )}
    </>
  );
}

function PanelView(props: { panel: Panel; start: number; end: number; step: number; onOff: (why: string) => void }) {
  const { panel, start, end, step } = props;
  const [series, setSeries] = useState<Series[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let current = true;
    Promise.all(
      panel.queries.map((q) =>
        supervisor(`/monitoring/query_range${query({ query: q.expr, start, end, step })}`).then((answer) =>
          toSeries(answer, q.legend),
        ),
      ),
    )
      .then((all) => {
        if (!current) return;
        setSeries(all.flat());
        setError(null);
      })
      .catch((e) => {
        if (!current) return;
        const why = offReason(e);
        if (why) props.onOff(why);
        else setError((e as Error).message);
      });
    return () => {
      current = false;
    };
  }, [panel, start, end, step]);

  return (
    <figure class="card panel" aria-label={panel.title}>
      <figcaption>
        <strong>{panel.title}</strong>
        {panel.description ? <span class="hint"> — {panel.description}</span> : null}
      </figcaption>
      <ErrorNote error={error} />
      {series === null && !error ? <p class="muted small">Loading…</p> : null}
      {series !== null ? <Plot series={series} unit={panel.unit} start={start} end={end} step={step} title={panel.title} /> : null}
    </figure>
  );
}

const W = 600;
const H = 200;
const LEFT = 88;
const BOTTOM = 18;
const TOP = 6;

function clock(t: number, span: number): string {
  const d = new Date(t * 1000);
  const iso = d.toISOString();
  return span > 86400 ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(11, 16);
}

function Plot(props: { series: Series[]; unit: string; start: number; end: number; step: number; title: string }) {
  const { series, unit, start, end, step } = props;
  const [hover, setHover] = useState<number | null>(null);
  if (series.length === 0) return <p class="muted small">No data in this range.</p>;
  const [yMin, yMax] = valueRange(series, unit);
  const box = { xMin: start, xMax: end, yMin, yMax, width: W - LEFT, height: H - BOTTOM - TOP, step };
  const ticks = [yMax, (yMax + yMin) / 2, yMin];
  const xAt = (t: number) => LEFT + ((t - start) / (end - start)) * box.width;
  // The sample nearest the pointer, per series, for the readout under the chart.
  const at = hover === null ? null : Math.round((start + ((hover - LEFT) / box.width) * (end - start)) / step) * step;
  const nearest = (s: Series) => {
    if (at === null) return undefined;
    let best: [number, number] | undefined;
    for (const p of s.points) if (!best || Math.abs(p[0] - at) < Math.abs(best[0] - at)) best = p;
    return best && Math.abs(best[0] - at) <= step ? best[1] : undefined;
  };
  const last = (s: Series) => s.points[s.points.length - 1]?.[1];
  return (
    <>
      <svg
        class="plot"
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-label={`${props.title}, ${series.length} series`}
        onMouseMove={(e) => {
          const rect = e.currentTarget.getBoundingClientRect();
          const x = ((e.clientX - rect.left) / rect.width) * W;
          setHover(x >= LEFT ? x : null);
        }}
        onMouseLeave={() => setHover(null)}
      >
        {ticks.map((v) => {
          const y = TOP + box.height - ((v - yMin) / (yMax - yMin)) * box.height;
          return (
            <g class="tick">
              <line x1={LEFT} x2={W} y1={y} y2={y} />
              <text x={LEFT - 4} y={y + 4} text-anchor="end">
                {formatValue(unit, v)}
              </text>
            </g>
          );
        })}
        <text class="tick-x" x={LEFT} y={H - 4}>
          {clock(start, end - start)}
        </text>
        <text class="tick-x" x={W} y={H - 4} text-anchor="end">
          {clock(end, end - start)}
        </text>
        <g transform={`translate(${LEFT},${TOP})`}>
          {series.map((s, i) => (
            <path d={seriesPath(s.points, box)} stroke={seriesColour(i)} class="series">
              <title>{s.name}</title>
            </path>
          ))}
        </g>
        {at !== null ? <line class="cursor" x1={xAt(at)} x2={xAt(at)} y1={TOP} y2={TOP + box.height} /> : null}
      </svg>
      <ul class="legend">
        {at !== null ? <li class="muted small">{new Date(at * 1000).toISOString().replace("T", " ").slice(0, 19)}Z</li> : null}
        {series.map((s, i) => (
          <li>
            <span class="swatch" style={{ background: seriesColour(i) }} />
            {s.name || "(no labels)"} <span class="muted">{formatValue(unit, at === null ? last(s) : nearest(s))}</span>
          </li>
        ))}
      </ul>
    </>
  );
}
