import { useState } from "preact/hooks";

import { swapper } from "../lib/api";
import { bytes, duration, number } from "../lib/format";
import { Action, Badge, ErrorNote, Section, Table, useData } from "../components/ui";

export function Models() {
  const status = useData<any>(() => swapper("/v1/swapper/status"), [], 2000);
  const [error, setError] = useState<string | null>(null);
  const act = (id: string, action: string) => () =>
    swapper(`/v1/swapper/models/${encodeURIComponent(id)}/${action}`, { method: "POST" });
  const models: any[] = status.data?.models ?? [];
  const used = models.filter((m) => m.state === "loaded").reduce((sum, m) => sum + (m.footprint_bytes ?? 0), 0);
  return (
    <Section title="The swapper's ledger">
      <ErrorNote error={status.error ?? error} />
      {status.data ? (
        <p class="summary">
          {bytes(used)} of {bytes(status.data.budget_bytes)} budget in use ({status.data.budget_source})
        </p>
      ) : null}
      <Table
        head={["Model", "Kind", "State", "Footprint", "Busy / queued", "Last use", "Last load", "Actions"]}
        label="Models"
      >
        {models.map((m) => (
          <tr data-model={m.id}>
            <td>
              {m.id}
              {m.pinned ? <span class="tag">pinned</span> : null}
              {m.last_error ? <div class="error small">{m.last_error}</div> : null}
            </td>
            <td>{m.kind}</td>
            <td>
              <Badge state={m.state} />
              {status.data.files_present?.[m.id] === false ? <div class="warn small">file missing</div> : null}
              <PullProgress pull={status.data.pulls?.[m.id]} />
            </td>
            <td>
              {bytes(m.footprint_bytes)} {m.measured ? "" : <span class="muted">(estimate)</span>}
            </td>
            <td>
              {number(m.active)} / {number(m.queued)}
            </td>
            <td>{m.idle_secs === null ? "never" : `${duration(m.idle_secs)} ago`}</td>
            <td>{m.last_load_ms === null ? "—" : `${number(m.last_load_ms)} ms`}</td>
            <td class="actions">
              <Action label="Load" run={act(m.id, "load")} onDone={status.reload} onError={setError} />
              <Action label="Unload" run={act(m.id, "unload")} onDone={status.reload} onError={setError} />
              {status.data.files_present?.[m.id] === false ? (
                <Action label="Download" kind="primary" run={act(m.id, "pull")} onDone={status.reload} onError={setError} />
              ) : null}
              <Action
                label={m.pinned ? "Unpin" : "Pin"}
                run={act(m.id, m.pinned ? "unpin" : "pin")}
                onDone={status.reload}
                onError={setError}
              />
            </td>
          </tr>
        ))}
      </Table>
      <p class="hint">
        Downloads resume where they stopped and are checked against the manifest's sha256 before use (the same as{" "}
        <code>daarion models pull &lt;id&gt;</code> on the box).
      </p>
    </Section>
  );
}

function PullProgress({ pull }: { pull?: any }) {
  if (!pull) return null;
  if (pull.state === "failed") return <div class="error small">download failed: {pull.error}</div>;
  if (pull.state === "done") return <div class="notice small">downloaded, checksum {pull.sha256?.slice(0, 12)}…</div>;
  return (
    <div class="small">
      <progress max={pull.total_bytes ?? undefined} value={pull.done_bytes} aria-label="Download progress" />{" "}
      {bytes(pull.done_bytes)}
      {pull.total_bytes ? ` of ${bytes(pull.total_bytes)}` : ""}
    </div>
  );
}
