// JSON typed by an operator into a text box: parsed, or a message saying what is wrong.

export function parseTyped(text: string): { value: unknown } | { error: string } {
  try {
    return { value: JSON.parse(text) };
  } catch (err) {
    return { error: `Not valid JSON: ${(err as Error).message}` };
  }
}
