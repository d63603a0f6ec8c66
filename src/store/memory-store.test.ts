import { describeStoreContract, WINDOW } from "../../test/support/store-contract.ts";
import { openMemoryStore } from "./memory-store.ts";
import type { Store } from "./types.ts";

let store: Store | undefined;

// One store per test; a second `open` is another handle on the same memory, as the gateway's engine
// and its handler share one store.
describeStoreContract("memory", {
  reset: () => {
    store = undefined;
  },
  open: (now) => {
    store ??= openMemoryStore({ replayWindowMs: WINDOW, now });
    return store;
  },
  durable: false,
  // MemoryReplayGuard keeps ids by the second they were claimed in, for up to a second more than the window.
  replayWindowGraceMs: 1_000,
});
