-- Recovery keys (issue 15, docs/recovery-key.md RK.8): at most one per
-- account, replaced by the next one, deleted with the account.
--
-- key_id and data (recoveryKeyId and recoveryData) are secret columns,
-- sealed by the store like those of 0004 (bound to the uid and the column).
-- kek_id marks the format of the row as in 0004: the id of the
-- key-encryption key that sealed both, or NULL for a row in clear (which
-- the store reads as it is and `keyserver kek seal-existing` seals, but
-- never writes).
CREATE TABLE recovery_keys (
    uid        BYTEA  NOT NULL PRIMARY KEY REFERENCES accounts (uid) ON DELETE CASCADE,
    key_id     BYTEA  NOT NULL,
    data       BYTEA  NOT NULL,
    created_at BIGINT NOT NULL,
    kek_id     TEXT
);
