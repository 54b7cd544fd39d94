import { useState } from "preact/hooks";

import { control, memory, query } from "../lib/api";
import { linePath, niceMax } from "../lib/chart";
import { number } from "../lib/format";
import { attempt, ErrorNote, Notice, Section, Table, useData } from "../components/ui";

const FIELDS = [
  ["requests_per_minute", "Requests per minute"],
  ["tokens_per_day", "Tokens per day"],
  ["gpu_seconds_per_day", "GPU-seconds per day"],
  ["cost_per_month", "Cost per month"],
] as const;

export function Quotas() {
  return (
    <>
      <SetLimits />
      <UserStatus />
      <Usage />
    </>
  );
}

function SetLimits() {
  const [kind, setKind] = useState("role");
  const [name, setName] = useState("user");
  const [values, setValues] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  return (
    <Section title="Set limits">
      <form
        class="stack"
        aria-label="Quota limits"
        onSubmit={async (e) => {
          e.preventDefault();
          const body: Record<string, unknown> = {};
          for (const [field] of FIELDS) {
            const raw = values[field]?.trim();
            if (raw) {
              const parsed = Number(raw);
              if (!Number.isFinite(parsed) || parsed < 0) {
                setError(`${field}: a number of 0 or more, or empty for no limit`);
                return;
              }
              // Requests and tokens are counted in whole units.
              body[field] = field === "requests_per_minute" || field === "tokens_per_day" ? Math.round(parsed) : parsed;
            }
          }
          const done = await attempt(setError, () =>
            control(`/quotas/limits/${kind}/${encodeURIComponent(name)}`, { method: "PUT", body }));
          if (!done) return;
          setNote(`Limits for ${kind} ${name} saved.`);
        }}
      >
        <div class="row">
          <label>
            For a
            <select value={kind} onChange={(e) => setKind(e.currentTarget.value)}>
              <option value="role">role</option>
              <option value="user">user</option>
            </select>
          </label>
          <label>
            Named
            <input value={name} required onInput={(e) => setName(e.currentTarget.value)} />
          </label>
        </div>
        <div class="row">
          {FIELDS.map(([field, label]) => (
            <label>
              {label}
              <input
                name={field}
                inputMode="decimal"
                value={values[field] ?? ""}
                placeholder="no limit"
                onInput={(e) => setValues({ ...values, [field]: e.currentTarget.value })}
              />
            </label>
          ))}
        </div>
        <ErrorNote error={error} />
        <Notice text={note} />
        <button type="submit" class="primary">
          Save limits
        </button>
      </form>
    </Section>
  );
}

function UserStatus() {
  const [user, setUser] = useState("");
  const [shown, setShown] = useState("");
  const status = useData<any>(() => (shown ? control(`/quotas/${encodeURIComponent(shown)}`) : Promise.resolve(null)), [shown]);
  return (
    <Section title="A user's quota now">
      <form
        class="row"
        aria-label="Quota lookup"
        onSubmit={(e) => {
          e.preventDefault();
          setShown(user.trim());
        }}
      >
        <label>
          User id
          <input value={user} onInput={(e) => setUser(e.currentTarget.value)} />
        </label>
        <button type="submit">Show</button>
      </form>
      <ErrorNote error={status.error} />
      {status.data ? (
        <Table head={["Limit", "Used", "Allowed", "From"]} label="Quota status">
          <tr>
            <td>Requests this minute</td>
            <td>{number(status.data.usage.requests_this_minute)}</td>
            <td>{number(status.data.limits.requests_per_minute) || "no limit"}</td>
            <td>{status.data.sources.requests_per_minute ?? "—"}</td>
          </tr>
          <tr>
            <td>Tokens today</td>
            <td>{number(status.data.usage.tokens_today)}</td>
            <td>{number(status.data.limits.tokens_per_day) || "no limit"}</td>
            <td>{status.data.sources.tokens_per_day ?? "—"}</td>
          </tr>
          <tr>
            <td>GPU-seconds today</td>
            <td>{number(status.data.usage.gpu_seconds_today, 1)}</td>
            <td>{number(status.data.limits.gpu_seconds_per_day, 1) || "no limit"}</td>
            <td>{status.data.sources.gpu_seconds_per_day ?? "—"}</td>
          </tr>
          <tr>
            <td>Cost this month</td>
            <td>{number(status.data.usage.cost_this_month, 4)}</td>
            <td>{number(status.data.limits.cost_per_month, 2) || "no limit"}</td>
            <td>{status.data.sources.cost_per_month ?? "—"}</td>
          </tr>
        </Table>
      ) : null}
    </Section>
  );
}

const SERIES = [
  ["tokens", "Tokens", (b: any) => b.prompt_tokens + b.completion_tokens],
  ["gpu", "GPU-seconds", (b: any) => b.gpu_seconds],
  ["cost", "Cost", (b: any) => b.cost],
] as const;

function Usage() {
  const [bucket, setBucket] = useState("day");
  const usage = useData<any>(() => memory(`/v1/usage${query({ bucket })}`), [bucket], 30000);
  return (
    <Section
      title="Usage over time"
      actions={
        <label class="inline">
          Per
          <select value={bucket} onChange={(e) => setBucket(e.currentTarget.value)}>
            <option value="hour">hour</option>
            <option value="day">day</option>
            <option value="month">month</option>
          </select>
        </label>
      }
    >
      <ErrorNote error={usage.error} />
      {usage.data ? (
        <>
          <p class="summary">
            {number(usage.data.total.requests)} requests,{" "}
            {number(usage.data.total.prompt_tokens + usage.data.total.completion_tokens)} tokens,{" "}
            {number(usage.data.total.gpu_seconds, 1)} GPU-seconds, cost {number(usage.data.total.cost, 4)}
          </p>
          <div class="charts">
            {SERIES.map(([id, label, pick]) => (
              <Chart id={id} label={label} points={usage.data.buckets.map((b: any) => ({ x: Date.parse(b.start), y: pick(b) }))} />
            ))}
          </div>
        </>
      ) : null}
    </Section>
  );
}

function Chart(props: { id: string; label: string; points: { x: number; y: number }[] }) {
  const width = 320;
  const height = 120;
  const max = niceMax(Math.max(0, ...props.points.map((p) => p.y)));
  return (
    <figure class="chart">
      <figcaption>
        {props.label} <span class="muted">(max {number(max, 2)})</span>
      </figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`${props.label} over time`}>
        <line x1="0" y1={height} x2={width} y2={height} class="axis" />
        <path d={linePath(props.points, width, height, max)} class="line" />
        {props.points.length === 1 ? <circle cx={width / 2} cy={height - (props.points[0].y / max) * height} r="3" class="dot" /> : null}
      </svg>
      {props.points.length === 0 ? <p class="muted small">No usage in this period.</p> : null}
    </figure>
  );
}
