// The portal's build: one hashed script and one stylesheet, no inline code (the server's CSP forbids it).
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // The preload polyfill would be code in index.html; every browser we support has modulepreload.
    modulePreload: { polyfill: false },
    // Small assets stay files: a data: URL for a font or script would need a CSP exception.
    assetsInlineLimit: 0,
    sourcemap: false,
    chunkSizeWarningLimit: 800,
  },
  server: {
    proxy: { '/api': 'http://127.0.0.1:8080' },
  },
});
