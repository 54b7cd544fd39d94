// The chat transcript as a streamed answer's events arrive (the router's /v1/route events).

export interface Turn {
  who: "you" | "agent" | "note";
  text: string;
}

/** The transcript after one event of a streamed answer. */
export function applyEvent(turns: Turn[], event: string, data: any): Turn[] {
  const last = turns[turns.length - 1];
  const agentTurn = last && last.who === "agent" ? last : null;
  switch (event) {
    case "token":
      if (agentTurn) return [...turns.slice(0, -1), { ...agentTurn, text: agentTurn.text + data.text }];
      return [...turns, { who: "agent", text: data.text }];
    case "message":
      if (agentTurn) return [...turns.slice(0, -1), { ...agentTurn, text: data.content }];
      return [...turns, { who: "agent", text: data.content }];
    case "tool_call":
      return [...turns, { who: "note", text: `uses ${data.name}` }];
    case "refused":
      return [...turns, { who: "note", text: `refused: ${data.reason}` }];
    case "error":
      return [...turns, { who: "note", text: `error: ${data.message}` }];
    case "ignored":
      return [...turns, { who: "note", text: `ignored: ${data.reason}` }];
    default:
      return turns;
  }
}
