import { defineConfig } from "vite";

// Built into dist/ and embedded in the daarion binary; `npm run dev` proxies the APIs to a
// running appliance's admin port so the UI can be worked on with live data.
export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    target: "es2022",
  },
  server: {
    proxy: { "/api": process.env.DAARION_ADMIN_URL ?? "http://127.0.0.1:9000" },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
} as any);
