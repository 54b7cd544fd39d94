// Alerts: what Prometheus evaluates as firing or pending, what Alertmanager holds (active,
// silenced, inhibited), its silences, and the history the ops-logger keeps in the audit log
// (`ops.alert`). Silences are created and expired here, through the supervisor.

import { useState } from "preact/hooks";

import { control, memory, query, supervisor } from "../lib/api";
import { ago, when } from "../lib/format";
import { matchersFor, parseDuration, severityRank, type Matcher } from "../lib/metrics";
import { Action, Badge, ErrorNote, Notice, Section, Table, attempt, useData } from "../components/ui";
import { TraceLink } from "./Trace";
import "./Monitoring.css";

type Labels = Record<string, string>;

interface PromAlert {
  labels: Labels;
  annotations: Labels;
  state: "firing" | "pending" | "inactive";
  activeAt?: string;
  value?: string;
}

interface AmAlert {
  labels: Labels;
  annotations: Labels;
  startsAt: string;
  fingerprint: string;
  status: { state: string; silencedBy: string[]; inhibitedBy: string[] };
}

interface Silence {
  id: string;
  matchers: { name: string; value: string; isRegex: boolean; isEqual?: boolean }[];
  startsAt: string;
  endsAt: string;
  createdBy: string;
  comment: string;
  status: { state: "active" | "pending" | "expired" };
}

const REFRESH_MS = 15_000;

function bySeverity<T extends { labels: Labels }>(a: T, b: T): number {
  return severityRank(a.labels.severity) - severityRank(b.labels.severity) || (a.labels.alertname ?? "").localeCompare(b.labels.alertname ?? "");
}

/** Only our own runbook's https links become links: annotations come from rule files, not people, but still. */
function Runbook({ url }: { url?: string }) {
  return url && url.startsWith("https://") ? (
    <a href={url} target="_blank" rel="noopener noreferrer">
      runbook
    </a>
  ) : (
    <span class="muted">—</span>
  );
}

function LabelList({ labels, skip = [] }: { labels: Labels; skip?: string[] }) {
  return (
    <span class="labels">
      {Object.entries(labels)
        .filter(([k]) => !skip.includes(k))
        .map(([k, v]) => (
          <code class="label">
            {k}={v}
          </code>
        ))}
    </span>
  );
}

function matcherText(m: Silence["matchers"][number]): string {
  const negated = m.isEqual === false;
  const op = m.isRegex ? (negated ? "!~" : "=~") : negated ? "!=" : "=";
  return `${m.name}${op}"${m.value}"`;
}

export function Alerts() {
  const prom = useData(() => supervisor("/monitoring/alerts"), [], REFRESH_MS);
  const am = useData<AmAlert[]>(() => supervisor("/monitoring/alertmanager/alerts"), [], REFRESH_MS);
  const silences = useData<Silence[]>(() => supervisor("/monitoring/silences"), [], REFRESH_MS);
  const [silencing, setSilencing] = useState<Labels | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const evaluated: PromAlert[] = (prom.data?.data?.alerts ?? []).filter((a: PromAlert) => a.state !== "inactive").sort(bySeverity);
  const held = [...(am.data ?? [])].sort(bySeverity);
  const reload = () => {
    am.reload();
    silences.reload();
  };
  // Said once when neither Prometheus nor Alertmanager can answer, not once per section.
  const offs = [prom.error, am.error, silences.error].filter((e) => e?.startsWith("monitoring is off"));
  const off = offs.length === 3 ? offs[0] : null;

  return (
    <>
      <Notice text={notice} />
      {silencing ? (
        <SilenceForm
          labels={silencing}
          onCancel={() => setSilencing(null)}
          onDone={(id) => {
            setSilencing(null);
            setNotice(`Silence ${id} created.`);
            reload();
          }}
        />
      ) : null}

      {off ? (
        <Section title="Monitoring" actions={<button onClick={() => (prom.reload(), reload())}>Try again</button>}>
          <p class="error" role="alert">
            {off}
          </p>
          <p class="hint">The Services page shows the prometheus and alertmanager units and why they are not running.</p>
        </Section>
      ) : (
        <>
          <Section title="Firing and pending" actions={<button onClick={prom.reload}>Refresh</button>}>
            <p class="hint">As Prometheus evaluates the rules now; pending alerts fire once their condition has held for the rule's `for:`.</p>
            <ErrorNote error={prom.error} />
            {prom.data && evaluated.length === 0 ? <p class="notice">Nothing firing or pending.</p> : null}
            {evaluated.length ? (
              <Table head={["Severity", "Alert", "State", "Since", "Labels", "", ""]} label="Firing and pending alerts">
                {evaluated.map((a) => (
                  <tr>
                    <td>
                      <Badge state={a.labels.severity ?? "none"} />
                    </td>
                    <td class="alert-text">
                      <strong>{a.labels.alertname}</strong>
                      <div>{a.annotations.summary}</div>
                      {a.annotations.description ? <div class="hint">{a.annotations.description}</div> : null}
                    </td>
                    <td>
                      <Badge state={a.state} />
                    </td>
                    <td title={when(a.activeAt)}>{ago(a.activeAt)}</td>
                    <td>
                      <LabelList labels={a.labels} skip={["alertname", "severity"]} />
                    </td>
                    <td>
                      <Runbook url={a.annotations.runbook_url} />
                    </td>
                    <td class="actions">
                      <button type="button" onClick={() => setSilencing(a.labels)}>
                        Silence…
                      </button>
                    </td>
                  </tr>
                ))}
              </Table>
            ) : null}
          </Section>

          <Section title="In Alertmanager" actions={<button onClick={am.reload}>Refresh</button>}>
            <p class="hint">Alerts Alertmanager has received: active ones are sent to the operators, silenced and inhibited ones are not.</p>
            <ErrorNote error={am.error} />
            {am.data && held.length === 0 ? <p class="notice">Alertmanager holds no alerts.</p> : null}
            {held.length ? (
              <Table head={["Severity", "Alert", "State", "Since", "Labels", ""]} label="Alertmanager alerts">
                {held.map((a) => (
                  <tr>
                    <td>
                      <Badge state={a.labels.severity ?? "none"} />
                    </td>
                    <td class="alert-text">
                      <strong>{a.labels.alertname}</strong>
                      <div>{a.annotations.summary}</div>
                    </td>
                    <td>
                      <Badge state={a.status.silencedBy.length ? "silenced" : a.status.inhibitedBy.length ? "inhibited" : a.status.state} />
                    </td>
                    <td title={when(a.startsAt)}>{ago(a.startsAt)}</td>
                    <td>
                      <LabelList labels={a.labels} skip={["alertname", "severity"]} />
                    </td>
                    <td>
                      <Runbook url={a.annotations.runbook_url} />
                    </td>
                  </tr>
                ))}
              </Table>
            ) : null}
          </Section>

          <Silences data={silences.data} error={silences.error} onChange={silences.reload} />
        </>
      )}
      <History />
    </>
  );
}

function SilenceForm(props: { labels: Labels; onCancel: () => void; onDone: (id: string) => void }) {
  const [matchers, setMatchers] = useState<(Matcher & { on: boolean })[]>(() => matchersFor(props.labels).map((m) => ({ ...m, on: true })));
  const [duration, setDuration] = useState("2h");
  const [comment, setComment] = useState("");
  const [error, setError] = useState<string | null>(null);
  const who = useData(() => control("/auth/whoami", { method: "POST" }), []);

  const submit = async () => {
    const seconds = parseDuration(duration);
    if (seconds === null) return setError("Duration: a number and s, m, h, d or w (e.g. 2h).");
    const chosen = matchers.filter((m) => m.on).map(({ on: _, ...m }) => m);
    await attempt(setError, async () => {
      const answer = await supervisor("/monitoring/silences", {
        method: "POST",
        body: { matchers: chosen, duration_secs: seconds, comment, created_by: who.data?.name ?? "admin" },
      });
      props.onDone(answer?.silenceID ?? "");
    });
  };

  return (
    <Section title={`Silence ${props.labels.alertname ?? "alerts"}`}>
      <form
        class="stack"
        onSubmit={(e) => {
          e.preventDefault();
          submit();
        }}
      >
        <fieldset aria-label="Matchers">
          {matchers.map((m, i) => (
            <label class="check">
              <input
                type="checkbox"
                checked={m.on}
                onChange={(e) => setMatchers(matchers.map((x, j) => (j === i ? { ...x, on: e.currentTarget.checked } : x)))}
              />
              <code>
                {m.name}="{m.value}"
              </code>
            </label>
          ))}
        </fieldset>
        <p class="hint">Alerts matching every ticked label are silenced.</p>
        <div class="row">
          <label>
            Duration
            <input value={duration} size={6} onInput={(e) => setDuration(e.currentTarget.value)} placeholder="2h" />
          </label>
          <label class="grow">
            Why
            <input value={comment} required maxLength={1000} onInput={(e) => setComment(e.currentTarget.value)} placeholder="maintenance of the GPU" />
          </label>
        </div>
        <ErrorNote error={error} />
        <div>
          <button type="submit" class="primary">
            Create silence
          </button>
          <button type="button" onClick={props.onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </Section>
  );
}

function Silences(props: { data: Silence[] | undefined; error: string | null; onChange: () => void }) {
  const [showExpired, setShowExpired] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const all = [...(props.data ?? [])].sort((a, b) => b.startsAt.localeCompare(a.startsAt));
  const shown = all.filter((s) => showExpired || s.status.state !== "expired");
  return (
    <Section
      title="Silences"
      actions={
        <label class="check">
          <input type="checkbox" checked={showExpired} onChange={(e) => setShowExpired(e.currentTarget.checked)} /> show expired
        </label>
      }
    >
      <ErrorNote error={props.error ?? error} />
      {props.data && shown.length === 0 ? <p class="muted">No silences.</p> : null}
      {shown.length ? (
        <Table head={["State", "Matches", "Until", "By", "Why", ""]} label="Silences">
          {shown.map((s) => (
            <tr class={s.status.state === "expired" ? "old" : ""}>
              <td>
                <Badge state={s.status.state} />
              </td>
              <td>
                {s.matchers.map((m) => (
                  <code class="label">{matcherText(m)}</code>
                ))}
              </td>
              <td title={when(s.endsAt)}>{when(s.endsAt)}</td>
              <td>{s.createdBy}</td>
              <td class="detail">{s.comment}</td>
              <td class="actions">
                {s.status.state !== "expired" ? (
                  <Action
                    label="Expire"
                    kind="danger"
                    run={() => supervisor(`/monitoring/silence/${encodeURIComponent(s.id)}`, { method: "DELETE" })}
                    onDone={props.onChange}
                    onError={setError}
                  />
                ) : null}
              </td>
            </tr>
          ))}
        </Table>
      ) : null}
    </Section>
  );
}

/** `ops.alert` entries: every firing and resolved notification Alertmanager sent. */
function History() {
  const history = useData<any[]>(() => memory(`/v1/audit${query({ action: "ops.alert", limit: 50 })}`), [], 60_000);
  return (
    <Section title="History" actions={<button onClick={history.reload}>Refresh</button>}>
      <p class="hint">Notifications Alertmanager sent, newest first (the audit log's ops.alert entries).</p>
      <ErrorNote error={history.error} />
      {history.data && history.data.length === 0 ? <p class="muted">No alerts yet.</p> : null}
      {history.data?.length ? (
        <Table head={["When", "Alert", "Status", "Severity", "Summary", "Trace"]} label="Alert history">
          {history.data.map((r) => (
            <tr>
              <td>{when(r.at)}</td>
              <td>{r.detail?.alertname ?? r.target}</td>
              <td>
                <Badge state={r.detail?.status ?? "unknown"} />
              </td>
              <td>{r.detail?.severity ?? "—"}</td>
              <td class="detail">{r.detail?.summary ?? ""}</td>
              <td>{r.trace_id ? <TraceLink id={r.trace_id} /> : "—"}</td>
            </tr>
          ))}
        </Table>
      ) : null}
    </Section>
  );
}
