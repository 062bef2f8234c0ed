-- Request throttling (spec C19). A throttled name (such as the forgot-password
-- limit of one account) has one row in throttle_keys, which a counting
-- transaction writes first so that concurrent counts of one name run one after
-- another, and one row per counted request in throttle_hits.

CREATE TABLE throttle_keys (
    name       TEXT   NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX throttle_keys_expires_at ON throttle_keys (expires_at);

CREATE TABLE throttle_hits (
    name       TEXT   NOT NULL,
    hit_at     BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX throttle_hits_name_hit_at ON throttle_hits (name, hit_at);
CREATE INDEX throttle_hits_expires_at ON throttle_hits (expires_at);
