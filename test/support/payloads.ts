import { type CustomActionPayload, checkCustomActionPayload } from "../../src/payload/schema.ts";
import { fixturePayload } from "./signing.ts";

/** The fixture payload, changed by `edit`, then checked as the gateway checks a call. */
export function checkedFixture(edit: (raw: Record<string, any>) => void = () => {}): CustomActionPayload {
  const raw = fixturePayload();
  edit(raw);
  const checked = checkCustomActionPayload(raw);
  if (!checked.ok) throw checked.error;
  return checked.payload;
}
