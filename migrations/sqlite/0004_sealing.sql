-- Secrets at rest (issue 13): the secret columns are sealed by the store
-- (package sealing: AES-256-GCM under a key-encryption key, bound to the row
-- and the column): accounts.ka, wrap_kb, srp_verifier, email_code,
-- tokens.auth_key, bundle_key, seed, code and unblock_codes.code.
--
-- kek_id marks the format of a row: the id of the key-encryption key that
-- sealed every secret column of the row (8 hex digits, sealing.KeyID), or
-- NULL for a row written before sealing, whose secrets are all in clear.
-- `keyserver kek seal-existing` (`kek rotate`) seals those and re-seals the
-- rows of retired keys, a batch at a time.
--
-- tokens.code and unblock_codes.code keep their declared type TEXT here: a
-- column of TEXT affinity stores a BLOB as it is (SQLite never converts a
-- BLOB), so a sealed code is a BLOB in it, and a clear code from before
-- stays TEXT until it is sealed.
ALTER TABLE accounts ADD COLUMN kek_id TEXT;
ALTER TABLE tokens ADD COLUMN kek_id TEXT;
ALTER TABLE unblock_codes ADD COLUMN kek_id TEXT;
