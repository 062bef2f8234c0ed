-- Abuse protection (spec 14, package customs), SQLite.
--
-- customs_counts holds one row per counted event of a rule's counter (a
-- failed sign-in, a mail, a send_code request...), keyed by the fold of an
-- account's email or of a mail address and/or a client ip key ('' where the
-- rule has none). A rule "L in W" refuses while the L-th most recent row of
-- its key is younger than W.
CREATE TABLE customs_counts (
    counter    TEXT   NOT NULL,
    fold       TEXT   NOT NULL,
    ip         TEXT   NOT NULL,
    at         BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX customs_counts_key ON customs_counts (counter, fold, ip, at);
CREATE INDEX customs_counts_ip ON customs_counts (ip);
CREATE INDEX customs_counts_expires_at ON customs_counts (expires_at);

-- One audited refusal per rule and key per window (spec 10.4).
CREATE TABLE customs_blocks (
    rule  TEXT   NOT NULL,
    fold  TEXT   NOT NULL,
    ip    TEXT   NOT NULL,
    until BIGINT NOT NULL,
    PRIMARY KEY (rule, fold, ip)
);
CREATE INDEX customs_blocks_until ON customs_blocks (until);

-- IPs an account signed in from (R2, spec 14.3): they belong to the uid and
-- go with the account.
CREATE TABLE known_ips (
    uid        BLOB   NOT NULL REFERENCES accounts (uid) ON DELETE CASCADE,
    ip         TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (uid, ip)
);
CREATE INDEX known_ips_expires_at ON known_ips (expires_at);

-- The client ip of the request that created a token, and whether a srpToken
-- was issued after an accepted unblock code; deleted with the token.
CREATE TABLE token_origins (
    token_id  BLOB    NOT NULL PRIMARY KEY REFERENCES tokens (token_id) ON DELETE CASCADE,
    ip        TEXT    NOT NULL,
    unblocked INTEGER NOT NULL CHECK (unblocked IN (0, 1))
);

CREATE TABLE unblock_codes (
    id         BLOB   NOT NULL PRIMARY KEY,
    uid        BLOB   NOT NULL REFERENCES accounts (uid) ON DELETE CASCADE,
    code       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX unblock_codes_uid ON unblock_codes (uid, created_at);
CREATE INDEX unblock_codes_expires_at ON unblock_codes (expires_at);

-- The purge of accounts never verified (spec 14.5).
CREATE INDEX accounts_unverified_created ON accounts (created_at) WHERE NOT verified;
