// Files users sent (Telegram, this page, the API), through the ingest service: upload them for a
// user, watch them being read and indexed, read what was extracted, retry, re-parse or delete.

import { useState } from "preact/hooks";

import { errorFrom, ingest, memory, query, raw } from "../lib/api";
import {
  anyUnfinished,
  type Attachment,
  type Chunk,
  finished,
  groupByLocator,
  parseLanguages,
  STATES,
  stateText,
  uploadText,
} from "../lib/attachments";
import { bytes, when } from "../lib/format";
import { upload } from "../lib/upload";
import { Action, Badge, ErrorNote, Section, Table, useData } from "../components/ui";
import "./Attachments.css";

/** How often a list or an attachment with something still to happen is refreshed. */
const LIVE_MS = 2000;

export function Attachments() {
  const [user, setUser] = useState<{ id: string; name: string } | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  // Bumped by whatever changes the list (an upload, a retry, a delete), so it reloads at once.
  const [changes, setChanges] = useState(0);
  const changed = () => setChanges((n) => n + 1);
  return (
    <>
      <UserPicker user={user} onPick={setUser} />
      {user ? <Uploads user={user} onUploaded={changed} /> : null}
      <List user={user?.id ?? null} selected={selected} onOpen={setSelected} changes={changes} />
      {selected ? (
        <Detail
          id={selected}
          onChanged={changed}
          onGone={() => {
            setSelected(null);
            changed();
          }}
        />
      ) : null}
    </>
  );
}

function UserPicker(props: { user: { id: string } | null; onPick: (u: { id: string; name: string } | null) => void }) {
  const [q, setQ] = useState("");
  const users = useData<any[]>(() => memory(`/v1/users${query({ q, limit: 50 })}`), [q]);
  return (
    <Section
      title="Whose files"
      actions={
        props.user ? (
          <button type="button" onClick={() => props.onPick(null)}>
            Everyone’s files
          </button>
        ) : null
      }
    >
      <label class="inline">
        Find a user
        <input type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} placeholder="name, id or Telegram id" />
      </label>
      <ErrorNote error={users.error} />
      <ul class="choices" aria-label="Users">
        {users.data?.map((u) => {
          const name = u.display_name || u.identities[0] || u.id;
          return (
            <li>
              <button type="button" aria-pressed={props.user?.id === u.id} onClick={() => props.onPick({ id: u.id, name })}>
                {name}
              </button>
            </li>
          );
        })}
      </ul>
      {props.user ? null : <p class="hint">Pick a user to upload files for them; the list shows everyone’s until then.</p>}
    </Section>
  );
}

interface Sending {
  key: number;
  name: string;
  size: number;
  loaded: number;
  total: number;
  state: "sending" | "done" | "failed";
  message: string | null;
}

let nextKey = 0;

function Uploads(props: { user: { id: string; name: string }; onUploaded: () => void }) {
  const [sending, setSending] = useState<Sending[]>([]);
  const [over, setOver] = useState(false);
  const update = (key: number, change: Partial<Sending>) =>
    setSending((all) => all.map((s) => (s.key === key ? { ...s, ...change } : s)));

  const send = (files: FileList | null) => {
    for (const file of Array.from(files ?? [])) {
      const key = ++nextKey;
      setSending((all) => [
        { key, name: file.name, size: file.size, loaded: 0, total: file.size, state: "sending", message: null },
        ...all,
      ]);
      const form = new FormData();
      // The user first: ingest learns whose file it is before the bytes stream in.
      form.append("user_id", props.user.id);
      form.append("file", file, file.name);
      upload<any>("/api/ingest/v1/attachments", form, (loaded, total) => update(key, { loaded, total: total || file.size }))
        .done.then((answer) => {
          const again = answer && answer.created === false;
          update(key, {
            state: "done",
            message: again ? "already there: the same file was sent before" : "received",
          });
          props.onUploaded();
        })
        .catch((e: Error) => update(key, { state: "failed", message: e.message }));
    }
  };

  return (
    <Section title={`Upload for ${props.user.name}`}>
      <div
        class={over ? "dropzone over" : "dropzone"}
        role="region"
        aria-label="Drop files here"
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={(e) => {
          e.preventDefault();
          setOver(false);
          send(e.dataTransfer?.files ?? null);
        }}
      >
        <p>Drop files here (PDF, DOCX, spreadsheets, slides, text, images, audio, video), or</p>
        <label class="inline">
          Choose files
          <input
            type="file"
            multiple
            onChange={(e) => {
              send(e.currentTarget.files);
              e.currentTarget.value = "";
            }}
          />
        </label>
      </div>
      {sending.length ? (
        <ul class="uploads" aria-label="Uploads">
          {sending.map((s) => (
            <li data-upload={s.name}>
              <span class="grow">{s.name}</span>
              <progress
                max={s.total || 1}
                value={s.state === "done" ? s.total || 1 : s.loaded}
                aria-label={`Upload of ${s.name}`}
              />
              <span class={s.state === "failed" ? "error small" : "muted small"}>
                {s.state === "sending" ? uploadText(s.loaded, s.total) : s.message}
              </span>
            </li>
          ))}
        </ul>
      ) : null}
    </Section>
  );
}

function List(props: { user: string | null; selected: string | null; onOpen: (id: string) => void; changes: number }) {
  const [state, setState] = useState("");
  const [live, setLive] = useState(false);
  const list = useData<Attachment[]>(
    async () => {
      const rows: Attachment[] = await ingest(`/v1/attachments${query({ user_id: props.user, state, limit: 200 })}`);
      setLive(anyUnfinished(rows));
      return rows;
    },
    [props.user, state, props.changes],
    live ? LIVE_MS : undefined,
  );
  return (
    <Section
      title="Attachments"
      actions={
        <label class="inline">
          State
          <select aria-label="State filter" value={state} onChange={(e) => setState(e.currentTarget.value)}>
            <option value="">any</option>
            {STATES.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
      }
    >
      <ErrorNote error={list.error} />
      {list.data && list.data.length === 0 ? <p class="muted">No attachments{state ? ` in state ${state}` : ""}.</p> : null}
      <Table head={["Name", "Format", "Size", "State", "Chunks", "Updated", ""]} label="Attachments">
        {list.data?.map((a) => (
          <tr data-attachment={a.id} data-state={a.state} class={props.selected === a.id ? "chosen" : ""}>
            <td class="name">{a.name}</td>
            <td>{a.format}</td>
            <td>{bytes(a.bytes)}</td>
            <td class={a.state === "failed" ? "warn" : ""}>
              <Badge state={a.state} /> <span class="small">{listNote(a)}</span>
            </td>
            <td>{a.chunks ? `${a.indexed} of ${a.chunks}` : "—"}</td>
            <td>{when(a.updated_at)}</td>
            <td>
              <button type="button" class="link" onClick={() => props.onOpen(a.id)}>
                open
              </button>
            </td>
          </tr>
        ))}
      </Table>
    </Section>
  );
}

function Detail(props: { id: string; onChanged: () => void; onGone: () => void }) {
  const [live, setLive] = useState(true);
  const attachment = useData<Attachment>(
    async () => {
      const a: Attachment = await ingest(`/v1/attachments/${props.id}`);
      setLive(!finished(a));
      return a;
    },
    [props.id],
    live ? LIVE_MS : undefined,
  );
  const a = attachment.data;
  const [error, setError] = useState<string | null>(null);
  const [forceOcr, setForceOcr] = useState(false);
  const [languages, setLanguages] = useState("");

  const retry = (options?: { ocr_languages: string[]; force_ocr: boolean }) =>
    ingest(`/v1/attachments/${props.id}/retry`, { method: "POST", body: options ? { options } : {} });
  const reloadLive = () => {
    setLive(true);
    attachment.reload();
    props.onChanged();
  };

  return (
    <Section
      title={a ? `Attachment: ${a.name}` : "Attachment"}
      actions={
        a ? (
          <>
            <Action
              label="Retry"
              run={() => retry()}
              onDone={reloadLive}
              onError={setError}
              disabled={!finished(a)}
              title={finished(a) ? "Read it again with the same options" : "Still being read"}
            />
            <Action label="Download" run={() => download(a)} onError={setError} />
            <Action
              label="Delete"
              kind="danger"
              run={async () => {
                if (!confirm(`Delete ${a.name}, its text, chunks and vectors?`)) return;
                await ingest(`/v1/attachments/${a.id}`, { method: "DELETE" });
                props.onGone();
              }}
              onError={setError}
            />
          </>
        ) : null
      }
    >
      <ErrorNote error={attachment.error ?? error} />
      {a ? (
        <>
          <dl class="facts" aria-label="Attachment details">
            <dt>State</dt>
            <dd data-testid="attachment-state">
              <Badge state={a.state} /> {stateText(a)}
            </dd>
            <dt>Format</dt>
            <dd>
              {a.format} <span class="muted">({a.mime})</span>
            </dd>
            <dt>Size</dt>
            <dd>{bytes(a.bytes)}</dd>
            <dt>Pages</dt>
            <dd>{a.pages ?? "—"}</dd>
            <dt>Chunks</dt>
            <dd>
              {a.chunks} ({a.indexed} indexed)
            </dd>
            <dt>Attempt</dt>
            <dd>{a.attempt}</dd>
            <dt>Options</dt>
            <dd>
              {a.options.force_ocr ? "OCR every page" : "text layer first"}
              {a.options.ocr_languages?.length ? `, OCR in ${a.options.ocr_languages.join("+")}` : ""}
            </dd>
            <dt>Received</dt>
            <dd>{when(a.created_at)}</dd>
            <dt>Parsed</dt>
            <dd>{when(a.parsed_at)}</dd>
            <dt>Indexed</dt>
            <dd>{when(a.indexed_at)}</dd>
            <dt>SHA-256</dt>
            <dd class="mono small">{a.sha256}</dd>
          </dl>
          <form
            class="row"
            aria-label="Re-parse"
            onSubmit={async (e) => {
              e.preventDefault();
              try {
                await retry({ ocr_languages: parseLanguages(languages), force_ocr: forceOcr });
                setError(null);
                reloadLive();
              } catch (err) {
                setError((err as Error).message);
              }
            }}
          >
            <label class="check">
              <input type="checkbox" checked={forceOcr} onChange={(e) => setForceOcr(e.currentTarget.checked)} />
              OCR every page
            </label>
            <label>
              OCR languages
              <input
                value={languages}
                onInput={(e) => setLanguages(e.currentTarget.value)}
                placeholder={a.options.ocr_languages?.join("+") || "ukr+rus+eng (the parser’s default)"}
              />
            </label>
            <button type="submit" disabled={!finished(a)}>
              Re-parse
            </button>
          </form>
          {a.document_id ? <Extracted document={a.document_id} version={`${a.updated_at}/${a.indexed}`} /> : null}
        </>
      ) : null}
    </Section>
  );
}

/** The extracted text, page by page (or sheet, slide, stretch of a recording). */
function Extracted(props: { document: string; version: string }) {
  const doc = useData<{ document: any; chunks: Chunk[] }>(() => memory(`/v1/documents/${props.document}`), [
    props.document,
    props.version,
  ]);
  const groups = doc.data ? groupByLocator(doc.data.chunks) : [];
  return (
    <div aria-label="Extracted text">
      <h3>Extracted text</h3>
      <ErrorNote error={doc.error} />
      {doc.data ? (
        <p class="muted small">
          {doc.data.chunks.length} chunks, {doc.data.chunks.filter((c) => c.state === "indexed").length} indexed
          {doc.data.chunks.some((c) => c.state === "failed")
            ? `, ${doc.data.chunks.filter((c) => c.state === "failed").length} failed`
            : ""}
        </p>
      ) : null}
      {groups.map((g) => (
        <section class="extract" aria-label={g.label}>
          <h4>{g.label}</h4>
          {g.chunks.map((c) => (
            <div class="chunk" data-chunk={c.ordinal}>
              {c.headings?.length ? <div class="muted small">{c.headings.join(" › ")}</div> : null}
              <pre class="text">{c.content}</pre>
              <div class="muted small">
                chunk {c.ordinal} <Badge state={c.state} />
                {c.error ? <span class="error"> {c.error}</span> : null}
              </div>
            </div>
          ))}
        </section>
      ))}
    </div>
  );
}

/** What the list adds to the state's badge: progress, or why it failed. */
function listNote(a: Attachment): string {
  if (a.state === "failed") return a.error ?? "";
  return a.state === "parsing" || a.state === "parsed" ? stateText(a) : "";
}

/** The original file, fetched with the session's CSRF header (a plain link would not send it). */
async function download(a: Attachment) {
  const response = await raw(`/api/ingest/v1/attachments/${a.id}/content`);
  if (!response.ok) {
    const text = await response.text();
    let body: unknown = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    throw errorFrom(response.status, body);
  }
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = a.name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
