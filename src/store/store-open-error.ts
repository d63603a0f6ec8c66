/** The store cannot be opened as configured (bad key, key file unreadable, newer schema, no key for PostgreSQL). */
export class StoreOpenError extends Error {
  override name = "StoreOpenError";
}
