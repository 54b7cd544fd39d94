// The memory API says why a hit matched with PostgreSQL's ts_headline, which marks the matched
// words with <b>…</b>. Only those marks are honoured; everything else stays text, so stored
// content can never become markup in the page.

export interface Piece {
  text: string;
  hit: boolean;
}

export function highlights(why: string): Piece[] {
  const pieces: Piece[] = [];
  let hit = false;
  for (const part of why.split(/(<b>|<\/b>)/)) {
    if (part === "<b>") hit = true;
    else if (part === "</b>") hit = false;
    else if (part) pieces.push({ text: part, hit });
  }
  return pieces;
}
