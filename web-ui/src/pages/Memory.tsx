import { useState } from "preact/hooks";

import { memory, query } from "../lib/api";
import { layout } from "../lib/graph";
import { highlights } from "../lib/highlight";
import { bytes, when } from "../lib/format";
import { Action, attempt, ErrorNote, Section, Table, useData } from "../components/ui";

export function Memory() {
  const [q, setQ] = useState("");
  const users = useData<any[]>(() => memory(`/v1/users${query({ q, limit: 50 })}`), [q]);
  const [user, setUser] = useState<string | null>(null);
  return (
    <>
      <Section title="Whose memory">
        <label class="inline">
          Find a user
          <input type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} placeholder="name, id or Telegram id" />
        </label>
        <ErrorNote error={users.error} />
        <ul class="choices" aria-label="Users">
          {users.data?.map((u) => (
            <li>
              <button type="button" aria-pressed={user === u.id} onClick={() => setUser(u.id)}>
                {u.display_name || u.identities[0] || u.id}
              </button>
            </li>
          ))}
        </ul>
      </Section>
      <IndexState />
      {user ? (
        <>
          <Search user={user} />
          <Facts user={user} />
          <Documents user={user} />
          <Graph user={user} />
        </>
      ) : null}
    </>
  );
}

function Search(props: { user: string }) {
  const [text, setText] = useState("");
  const [asked, setAsked] = useState("");
  const hits = useData<any[]>(
    () => (asked ? memory(`/v1/search${query({ user_id: props.user, q: asked, limit: 20 })}`) : Promise.resolve([])),
    [props.user, asked],
  );
  return (
    <Section title="Search">
      <form
        class="row"
        role="search"
        aria-label="Memory search"
        onSubmit={(e) => {
          e.preventDefault();
          setAsked(text.trim());
        }}
      >
        <label>
          Words
          <input type="search" name="q" value={text} onInput={(e) => setText(e.currentTarget.value)} />
        </label>
        <button type="submit">Search</button>
      </form>
      <ErrorNote error={hits.error} />
      {asked && hits.data && hits.data.length === 0 ? <p>Nothing matched “{asked}”.</p> : null}
      <ol class="hits" aria-label="Search results">
        {hits.data?.map((h) => (
          <li>
            <span class="tag">{h.kind}</span> {h.content}
            <div class="muted small">
              {h.matched_by.includes("words") ? (
                <>
                  matched words: {highlights(h.why).map((p) => (p.hit ? <mark>{p.text}</mark> : p.text))}
                </>
              ) : null}
              {h.matched_by.includes("graph") ? <>from {h.why} </> : null}
              {h.matched_by.includes("meaning") ? (
                <> {h.matched_by.includes("words") ? "· " : ""}close in meaning (similarity {h.similarity?.toFixed(2)})</>
              ) : null}{" "}
              · rank score {h.score.toFixed(4)}
            </div>
          </li>
        ))}
      </ol>
    </Section>
  );
}

function Facts(props: { user: string }) {
  const [withHistory, setWithHistory] = useState(false);
  const facts = useData<any[]>(() => memory(`/v1/users/${props.user}/facts${query({ history: withHistory ? "true" : undefined })}`), [props.user, withHistory]);
  const [history, setHistory] = useState<{ id: string; rows: any[] } | null>(null);
  return (
    <Section
      title="Facts"
      actions={
        <label class="check">
          <input type="checkbox" checked={withHistory} onChange={(e) => setWithHistory(e.currentTarget.checked)} />
          include superseded and forgotten
        </label>
      }
    >
      <ErrorNote error={facts.error} />
      <Table head={["Fact", "Valid", "Why", "By", ""]} label="Facts">
        {facts.data?.map((f) => (
          <tr class={f.valid_to || f.forgotten ? "old" : ""}>
            <td>{f.content}</td>
            <td>
              {when(f.valid_from)} → {f.valid_to ? when(f.valid_to) : "now"}
              {f.forgotten ? <span class="tag">forgotten</span> : null}
            </td>
            <td>{f.reason}</td>
            <td>
              {f.created_by}
              {f.agent_id ? ` · ${f.agent_id}` : ""}
            </td>
            <td>
              <button
                type="button"
                class="link"
                onClick={async () => setHistory({ id: f.id, rows: await memory(`/v1/facts/${f.id}/history`) })}
              >
                history
              </button>
            </td>
          </tr>
        ))}
      </Table>
      {history ? (
        <div aria-label="Fact history">
          <h3>How this fact came to be</h3>
          <ol>
            {history.rows.map((r) => (
              <li>
                “{r.content}” — {when(r.valid_from)} → {r.valid_to ? when(r.valid_to) : "now"} ({r.reason || "no reason given"}
                {r.source_message_id ? `, from message ${r.source_message_id}` : ""})
              </li>
            ))}
          </ol>
        </div>
      ) : null}
    </Section>
  );
}

function Graph(props: { user: string }) {
  const [q, setQ] = useState("");
  const nodes = useData<any[]>(() => memory(`/v1/graph/nodes${query({ user_id: props.user, q, limit: 20 })}`), [props.user, q]);
  const [centre, setCentre] = useState<string | null>(null);
  const around = useData<any>(
    () => (centre ? memory(`/v1/graph/nodes/${centre}/neighbourhood${query({ depth: 2, limit: 60 })}`) : Promise.resolve(null)),
    [centre],
  );
  const width = 640;
  const height = 400;
  const graph = around.data;
  const positions = graph
    ? layout(
        graph.nodes.map((n: any) => ({ id: n.id })),
        graph.edges.map((e: any) => ({ from: e.from_node, to: e.to_node })),
        width,
        height,
      )
    : null;
  return (
    <Section title="Graph">
      <label class="inline">
        Entity
        <input type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} placeholder="a name" />
      </label>
      <ErrorNote error={nodes.error ?? around.error} />
      <ul class="choices" aria-label="Entities">
        {nodes.data?.map((n) => (
          <li>
            <button type="button" aria-pressed={centre === n.id} onClick={() => setCentre(n.id)}>
              {n.name} <span class="muted">({n.kind})</span>
            </button>
          </li>
        ))}
      </ul>
      {graph && positions ? (
        <svg class="graph" viewBox={`0 0 ${width} ${height}`} role="img" aria-label="Neighbourhood graph">
          {graph.edges.map((e: any) => {
            const a = positions.get(e.from_node);
            const b = positions.get(e.to_node);
            if (!a || !b) return null;
            return (
              <g class={e.ended_at ? "edge ended" : "edge"}>
                <line x1={a.x} y1={a.y} x2={b.x} y2={b.y} />
                <text x={(a.x + b.x) / 2} y={(a.y + b.y) / 2}>
                  {e.relation}
                </text>
              </g>
            );
          })}
          {graph.nodes.map((n: any) => {
            const p = positions.get(n.id)!;
            return (
              <g class={n.id === centre ? "node centre" : "node"} onClick={() => setCentre(n.id)}>
                <circle cx={p.x} cy={p.y} r="8" />
                <text x={p.x + 11} y={p.y + 4}>
                  {n.name}
                </text>
              </g>
            );
          })}
        </svg>
      ) : null}
    </Section>
  );
}

function IndexState() {
  const status = useData<any>(() => memory("/v1/index/status"), [], 10000);
  const [error, setError] = useState<string | null>(null);
  const count = (kind: string, state: string) =>
    status.data?.states.find((s: any) => s.kind === kind && s.state === state)?.count ?? 0;
  return (
    <Section
      title="Index"
      actions={
        status.data?.failed.length ? (
          <Action
            label="Retry failed"
            run={() => memory("/v1/index/retry", { method: "POST" })}
            onDone={status.reload}
            onError={setError}
          />
        ) : null
      }
    >
      <ErrorNote error={status.error ?? error} />
      {status.data ? (
        <>
          <p class="summary">
            {status.data.vectors.messages} vectors with {status.data.model ?? "no embedding model"}
          </p>
          <Table head={["Kind", "Indexed", "Waiting", "Failed"]} label="Index state">
            {["message", "fact"].map((kind) => (
              <tr>
                <td>{kind}s</td>
                <td>{count(kind, "indexed")}</td>
                <td>{count(kind, "pending")}</td>
                <td class={count(kind, "failed") ? "warn" : ""}>{count(kind, "failed")}</td>
              </tr>
            ))}
          </Table>
          {status.data.failed.length ? (
            <ul class="log" aria-label="Index failures">
              {status.data.failed.map((f: any) => (
                <li>
                  {f.kind} {f.item_id}: {f.error} ({f.attempts} attempts)
                </li>
              ))}
            </ul>
          ) : null}
        </>
      ) : null}
    </Section>
  );
}

function Documents(props: { user: string }) {
  const documents = useData<any[]>(() => memory(`/v1/users/${props.user}/documents`), [props.user], 3000);
  const [title, setTitle] = useState("");
  const [content, setContent] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState<any | null>(null);
  return (
    <Section title="Documents">
      <ErrorNote error={documents.error ?? error} />
      <Table head={["Title", "Size", "Chunks", "Index", "Added", ""]} label="Documents">
        {documents.data?.map((d) => (
          <tr data-document={d.id}>
            <td>{d.title}</td>
            <td>{bytes(d.bytes)}</td>
            <td>{d.chunks}</td>
            <td class={d.failed ? "warn" : ""}>
              {d.indexed} of {d.chunks} indexed
              {d.pending ? `, ${d.pending} waiting` : ""}
              {d.failed ? `, ${d.failed} failed` : ""}
            </td>
            <td>{when(d.created_at)}</td>
            <td>
              <button type="button" class="link" onClick={async () => setOpen(await memory(`/v1/documents/${d.id}`))}>
                chunks
              </button>
            </td>
          </tr>
        ))}
      </Table>
      {open ? (
        <ol aria-label="Chunks" class="hits">
          {open.chunks.map((c: any) => (
            <li>
              <span class="tag">{c.state}</span> {c.content.slice(0, 200)}
              {c.content.length > 200 ? "…" : ""}
              {c.error ? <div class="error small">{c.error}</div> : null}
            </li>
          ))}
        </ol>
      ) : null}
      <form
        class="stack"
        aria-label="Add a document"
        onSubmit={async (e) => {
          e.preventDefault();
          const done = await attempt(setError, () =>
            memory(`/v1/users/${props.user}/documents`, { body: { title, content } }));
          if (!done) return;
          setTitle("");
          setContent("");
          documents.reload();
        }}
      >
        <h3>Add a text document</h3>
        <label>
          Title
          <input value={title} required onInput={(e) => setTitle(e.currentTarget.value)} />
        </label>
        <label>
          Text
          <textarea rows={6} value={content} required onInput={(e) => setContent(e.currentTarget.value)} />
        </label>
        <button type="submit">Add document</button>
      </form>
    </Section>
  );
}
