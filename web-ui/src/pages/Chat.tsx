import { useRef, useState } from "preact/hooks";

import { control, errorFrom, raw } from "../lib/api";
import { readEvents } from "../lib/sse";
import { type Turn, applyEvent } from "../lib/transcript";
import { ErrorNote, Section, useData } from "../components/ui";

function newChatId(): string {
  return `admin-ui-${crypto.randomUUID()}`;
}

export function Chat() {
  const agents = useData<any[]>(() => control("/agents"), []);
  const [agent, setAgent] = useState("");
  const [text, setText] = useState("");
  const [turns, setTurns] = useState<Turn[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const chatId = useRef(newChatId());
  const send = async () => {
    const message = text.trim();
    if (!message) return;
    setText("");
    setBusy(true);
    setError(null);
    let current: Turn[] = [...turns, { who: "you", text: message }];
    setTurns(current);
    try {
      const response = await raw("/api/gateway/v1/chat", {
        body: { text: message, agent: agent || null, chat_id: chatId.current },
      });
      if (!response.ok) {
        const body = await response.json().catch(() => null);
        throw errorFrom(response.status, body);
      }
      await readEvents(response, (e) => {
        let data: any = {};
        try {
          data = JSON.parse(e.data);
        } catch {
          return;
        }
        current = applyEvent(current, e.event, data);
        setTurns(current);
      });
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Section
      title="Talk to an agent"
      actions={
        <button
          type="button"
          onClick={() => {
            chatId.current = newChatId();
            setTurns([]);
          }}
        >
          New conversation
        </button>
      }
    >
      <label class="inline">
        Agent
        <select value={agent} onChange={(e) => setAgent(e.currentTarget.value)}>
          <option value="">default (routing rules)</option>
          {agents.data?.map((a) => (
            <option value={a.id}>{a.name || a.id}</option>
          ))}
        </select>
      </label>
      <ol class="transcript" aria-live="polite" aria-label="Conversation">
        {turns.map((t) => (
          <li class={`turn ${t.who}`}>
            <span class="sr-only">{t.who === "you" ? "You" : t.who === "agent" ? "Agent" : "Note"}: </span>
            {t.text}
          </li>
        ))}
      </ol>
      <ErrorNote error={error} />
      <form
        class="row composer"
        aria-label="Compose"
        onSubmit={(e) => {
          e.preventDefault();
          send();
        }}
      >
        <label class="grow">
          <span class="sr-only">Message</span>
          <textarea
            rows={2}
            value={text}
            placeholder="Write a message…"
            onInput={(e) => setText(e.currentTarget.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter" && !e.shiftKey) {
                e.preventDefault();
                send();
              }
            }}
          />
        </label>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Answering…" : "Send"}
        </button>
      </form>
    </Section>
  );
}
