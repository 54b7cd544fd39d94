// A small force-directed layout for the memory graph's neighbourhood view: deterministic (the
// same graph is drawn the same way each time), fine for the tens of nodes a neighbourhood has.

export interface Node {
  id: string;
}
export interface Edge {
  from: string;
  to: string;
}
export type Positions = Map<string, { x: number; y: number }>;

export function layout(
  nodes: Node[],
  edges: Edge[],
  width: number,
  height: number,
  iterations = 300,
): Positions {
  const positions: Positions = new Map();
  const n = nodes.length;
  nodes.forEach((node, i) => {
    const angle = (2 * Math.PI * i) / Math.max(n, 1);
    positions.set(node.id, {
      x: width / 2 + (Math.cos(angle) * width) / 3,
      y: height / 2 + (Math.sin(angle) * height) / 3,
    });
  });
  if (n <= 1) {
    if (n === 1) positions.set(nodes[0].id, { x: width / 2, y: height / 2 });
    return positions;
  }
  const k = Math.sqrt((width * height) / n) * 0.6;
  let temperature = width / 8;
  for (let step = 0; step < iterations; step++) {
    const shift = new Map(nodes.map((node) => [node.id, { x: 0, y: 0 }]));
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        const a = positions.get(nodes[i].id)!;
        const b = positions.get(nodes[j].id)!;
        const dx = a.x - b.x || 0.01;
        const dy = a.y - b.y || 0.01;
        const distance = Math.max(Math.hypot(dx, dy), 0.01);
        const force = (k * k) / distance;
        const sa = shift.get(nodes[i].id)!;
        const sb = shift.get(nodes[j].id)!;
        sa.x += (dx / distance) * force;
        sa.y += (dy / distance) * force;
        sb.x -= (dx / distance) * force;
        sb.y -= (dy / distance) * force;
      }
    }
    for (const edge of edges) {
      const a = positions.get(edge.from);
      const b = positions.get(edge.to);
      if (!a || !b || edge.from === edge.to) continue;
      const dx = a.x - b.x;
      const dy = a.y - b.y;
      const distance = Math.max(Math.hypot(dx, dy), 0.01);
      const force = (distance * distance) / k;
      const sa = shift.get(edge.from)!;
      const sb = shift.get(edge.to)!;
      sa.x -= (dx / distance) * force;
      sa.y -= (dy / distance) * force;
      sb.x += (dx / distance) * force;
      sb.y += (dy / distance) * force;
    }
    for (const node of nodes) {
      const p = positions.get(node.id)!;
      const s = shift.get(node.id)!;
      const length = Math.max(Math.hypot(s.x, s.y), 0.01);
      p.x += (s.x / length) * Math.min(length, temperature);
      p.y += (s.y / length) * Math.min(length, temperature);
      p.x = Math.min(width - 20, Math.max(20, p.x));
      p.y = Math.min(height - 20, Math.max(20, p.y));
    }
    temperature *= 0.98;
  }
  return positions;
}
