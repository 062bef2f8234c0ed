// Dedicated module worker: stretches one password off the main thread and
// reports progress, so the page stays responsive for ~1 s of scrypt.
import { stretch } from "./stretch.js";

self.onmessage = async ({ data: { email, password, salt } }) => {
  try {
    let last = -1;
    const r = await stretch(email, password, salt, (f) => {
      const pct = Math.floor(f * 100);
      if (pct !== last) { last = pct; self.postMessage({ progress: f }); }
    });
    password.fill(0);
    self.postMessage({ result: r });
  } catch (e) {
    self.postMessage({ error: String(e?.message || e) });
  }
};
