// One trace across the services: the supervisor gathers its spans and log lines from each
// (GET /api/traces/{trace_id}) and this page draws the waterfall. Other pages link here with
// /trace?trace=<id> (openTrace, TraceLink).

import { useEffect, useState } from "preact/hooks";

import { query, supervisor } from "../lib/api";
import { isTraceId, nanos, serviceColour, waterfall, type LogLine, type Span } from "../lib/metrics";
import { ErrorNote, Json, Section, Table } from "../components/ui";
import "./Monitoring.css";

interface TraceAnswer {
  trace_id: string;
  spans: Span[];
  events: LogLine[];
  /** Services that did not answer: their part of the trace is absent, not empty. */
  missing?: string[];
}

/** Opens a trace on the Trace page (the same as the menu's links do). */
export function openTrace(id: string) {
  history.pushState(null, "", `/trace${query({ trace: id })}`);
  dispatchEvent(new PopStateEvent("popstate"));
}

export function TraceLink({ id }: { id: string }) {
  return (
    <a
      class="mono"
      href={`/trace${query({ trace: id })}`}
      title="Open this trace"
      onClick={(e) => {
        e.preventDefault();
        openTrace(id);
      }}
    >
      {id.slice(0, 12)}…
    </a>
  );
}

function fromUrl(): string {
  return new URLSearchParams(location.search).get("trace")?.trim().toLowerCase() ?? "";
}

function clockNanos(n: number): string {
  const iso = new Date(n / 1e6).toISOString();
  return `${iso.slice(11, 23)}`;
}

export function Trace() {
  const [input, setInput] = useState(fromUrl);
  const [id, setId] = useState(fromUrl);
  const [trace, setTrace] = useState<TraceAnswer | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [selected, setSelected] = useState<string | null>(null);
  // Asking again for the same id fetches again: spans arrive as the services finish them.
  const [asked, setAsked] = useState(0);

  // A link from another page while this one is open changes only the query string.
  useEffect(() => {
    const update = () => {
      setInput(fromUrl());
      setId(fromUrl());
    };
    addEventListener("popstate", update);
    return () => removeEventListener("popstate", update);
  }, []);

  useEffect(() => {
    setTrace(null);
    setSelected(null);
    if (!id) return;
    if (!isTraceId(id)) {
      setError("A trace id is 32 hexadecimal digits.");
      return;
    }
    let current = true;
    setLoading(true);
    supervisor(`/traces/${id}`)
      .then((answer: TraceAnswer) => {
        if (!current) return;
        setTrace(answer);
        setError(null);
      })
      .catch((e: Error) => current && setError(e.message))
      .finally(() => current && setLoading(false));
    return () => {
      current = false;
    };
  }, [id, asked]);

  const open = (next: string) => {
    const clean = next.trim().toLowerCase();
    history.replaceState(null, "", `/trace${query({ trace: clean })}`);
    setId(clean);
    setAsked((n) => n + 1);
  };

  return (
    <>
      <form
        class="row"
        aria-label="Find a trace"
        onSubmit={(e) => {
          e.preventDefault();
          open(input);
        }}
      >
        <label class="grow">
          Trace id
          <input
            name="trace"
            class="mono"
            value={input}
            placeholder="4bf92f3577b34da6a3ce929d0e0e4736"
            maxLength={64}
            onInput={(e) => setInput(e.currentTarget.value)}
          />
        </label>
        <button type="submit" class="primary">
          Show
        </button>
      </form>
      <p class="hint">Every error answer and every audit entry carries a trace id; the audit log links here.</p>
      <ErrorNote error={error} />
      {loading ? <p class="muted">Gathering the trace from the services…</p> : null}
      {trace ? <TraceView trace={trace} selected={selected} onSelect={setSelected} /> : null}
    </>
  );
}

function TraceView(props: { trace: TraceAnswer; selected: string | null; onSelect: (id: string | null) => void }) {
  const { trace, selected } = props;
  const { rows, start, end } = waterfall(trace.spans ?? []);
  const services = [...new Set((trace.spans ?? []).map((s) => s.service))].sort();
  const span = rows.find((r) => r.span.span_id === selected)?.span;
  const lines = (trace.events ?? [])
    .filter((e) => !selected || e.span_id === selected)
    .sort((a, b) => a.unix_nanos - b.unix_nanos);

  return (
    <>
      <Section title={`Trace ${trace.trace_id}`}>
        <p>
          {rows.length} spans over {nanos(end - start)}
          {services.map((s) => (
            <span class="tag">
              <span class="swatch" style={{ background: serviceColour(s) }} />
              {s}
            </span>
          ))}
        </p>
        {trace.missing?.length ? (
          <p class="hint" role="status">
            Incomplete: {trace.missing.join(", ")} did not answer, so their spans and log lines are missing.
          </p>
        ) : null}
        {rows.length === 0 ? (
          <p class="muted">No service holds this trace: each keeps its latest spans in memory only, while it runs.</p>
        ) : null}
        <ol class="waterfall" aria-label="Spans">
          {rows.map((r) => (
            <li class={r.span.span_id === selected ? "selected" : ""}>
              <button
                type="button"
                class="span-row"
                aria-pressed={r.span.span_id === selected}
                onClick={() => props.onSelect(r.span.span_id === selected ? null : r.span.span_id)}
              >
                <span class="span-name" style={{ paddingLeft: `${r.depth * 0.9}rem` }} title={`${r.span.service}: ${r.span.name}`}>
                  {r.span.name} <span class="muted small">{r.span.service}</span>
                </span>
                <span class="span-track">
                  <span
                    class="span-bar"
                    style={{
                      left: `${r.offset * 100}%`,
                      width: `max(2px, ${r.width * 100}%)`,
                      background: serviceColour(r.span.service),
                    }}
                  />
                </span>
                <span class="span-time">{nanos(r.span.duration_nanos)}</span>
              </button>
            </li>
          ))}
        </ol>
      </Section>
      {span ? (
        <Section title={`${span.service}: ${span.name}`} actions={<button onClick={() => props.onSelect(null)}>All log lines</button>}>
          <p class="small muted">
            span {span.span_id}
            {span.parent_id ? ` · parent ${span.parent_id}` : ""} · starts at +{nanos(span.start_unix_nanos - start)} · lasts{" "}
            {nanos(span.duration_nanos)}
          </p>
          <Json value={span.fields ?? {}} />
        </Section>
      ) : null}
      <Section title={span ? "This span's log lines" : "Log lines"}>
        {lines.length === 0 ? <p class="muted">No log lines.</p> : null}
        {lines.length ? (
          <Table head={["Time", "Service", "Level", "Line"]} label="Log lines">
            {lines.map((l) => (
              <tr>
                <td class="mono">{clockNanos(l.unix_nanos)}</td>
                <td>{l.service}</td>
                <td>
                  <span class={`level level-${(l.level ?? "").toLowerCase()}`}>{l.level}</span>
                </td>
                <td class="detail">
                  <span class="mono small">{l.text}</span>
                  {l.target ? <div class="muted small">{l.target}</div> : null}
                </td>
              </tr>
            ))}
          </Table>
        ) : null}
      </Section>
    </>
  );
}
