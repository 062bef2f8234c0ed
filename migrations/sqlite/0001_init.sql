-- Initial schema (SQLite). Times are BIGINT milliseconds since the Unix epoch
-- (UTC); booleans are INTEGER 0/1; binary values are BLOBs.

CREATE TABLE accounts (
    uid              BLOB    NOT NULL PRIMARY KEY,
    email            TEXT    NOT NULL,
    normalized_email TEXT    NOT NULL UNIQUE,
    srp_type         TEXT    NOT NULL,
    srp_verifier     BLOB    NOT NULL,
    srp_salt         BLOB    NOT NULL,
    stretch_type     TEXT    NOT NULL,
    pbkdf2_rounds_1  INTEGER NOT NULL,
    scrypt_n         INTEGER NOT NULL,
    scrypt_r         INTEGER NOT NULL,
    scrypt_p         INTEGER NOT NULL,
    pbkdf2_rounds_2  INTEGER NOT NULL,
    stretch_salt     BLOB    NOT NULL,
    ka               BLOB    NOT NULL,
    wrap_kb          BLOB    NOT NULL,
    verified         INTEGER NOT NULL CHECK (verified IN (0, 1)),
    email_code       BLOB    NOT NULL,
    disabled         INTEGER NOT NULL CHECK (disabled IN (0, 1)),
    created_at       BIGINT  NOT NULL,
    generation       BIGINT  NOT NULL
);

-- token_id is globally unique; lookups are by (type, token_id). A
-- keyFetchToken's session_id cascades, so deleting a session deletes them.
CREATE TABLE tokens (
    token_id   BLOB    NOT NULL PRIMARY KEY,
    type       TEXT    NOT NULL CHECK (type IN ('srpToken', 'authToken', 'sessionToken',
                   'keyFetchToken', 'accountResetToken', 'forgotPasswordToken')),
    uid        BLOB    NOT NULL REFERENCES accounts (uid) ON DELETE CASCADE,
    auth_key   BLOB    NOT NULL,
    bundle_key BLOB    NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT,
    srp_b      BLOB,
    session_id BLOB    REFERENCES tokens (token_id) ON DELETE CASCADE,
    seed       BLOB,
    code       TEXT,
    tries      INTEGER NOT NULL CHECK (tries >= 0)
);
CREATE INDEX tokens_uid_type ON tokens (uid, type);
CREATE INDEX tokens_expires_at ON tokens (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX tokens_session_id ON tokens (session_id) WHERE session_id IS NOT NULL;

CREATE TABLE devices (
    id              BLOB   NOT NULL PRIMARY KEY,
    uid             BLOB   NOT NULL REFERENCES accounts (uid) ON DELETE CASCADE,
    session_id      BLOB   NOT NULL UNIQUE REFERENCES tokens (token_id) ON DELETE CASCADE,
    name            TEXT   NOT NULL,
    type            TEXT   NOT NULL,
    push_callback   TEXT,
    push_public_key TEXT,
    push_auth_key   TEXT,
    created_at      BIGINT NOT NULL,
    last_access_at  BIGINT NOT NULL
);
CREATE INDEX devices_uid_created ON devices (uid, created_at, id);

CREATE TABLE hawk_nonces (
    token_id   BLOB   NOT NULL,
    ts         BIGINT NOT NULL,
    nonce      TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (token_id, ts, nonce)
);
CREATE INDEX hawk_nonces_expires_at ON hawk_nonces (expires_at);

CREATE TABLE assertion_hashes (
    hash       BLOB   NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX assertion_hashes_expires_at ON assertion_hashes (expires_at);

-- No foreign keys: the audit trail survives account deletion.
CREATE TABLE audit_events (
    id         BLOB   NOT NULL PRIMARY KEY,
    time       BIGINT NOT NULL,
    actor      TEXT   NOT NULL CHECK (actor IN ('user', 'admin', 'system')),
    action     TEXT   NOT NULL,
    outcome    TEXT   NOT NULL CHECK (outcome IN ('success', 'failure')),
    uid        BLOB,
    device_id  BLOB,
    session_id BLOB,
    ip         TEXT   NOT NULL,
    details    TEXT   NOT NULL
);
CREATE INDEX audit_events_time ON audit_events (time, id);
CREATE INDEX audit_events_uid_time ON audit_events (uid, time, id);
