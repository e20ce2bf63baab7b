-- The ledger on PostgreSQL: the same tables as migrations/sqlite, in
-- PostgreSQL's types (integers are BIGINT: the ledger reads them as i64).
-- The ledger: plans, decisions, runs, batch checkpoints, locks, audit events.
-- Nothing here holds a personal value or a secret from the environment.

-- Per-target HMAC keys for anonymization (when LETHE_HASH_KEY is not set).
CREATE TABLE hash_keys (
    target      TEXT PRIMARY KEY,
    key         BYTEA NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE plans (
    id          TEXT PRIMARY KEY,
    job         TEXT NOT NULL,
    target      TEXT NOT NULL,
    action      TEXT NOT NULL,
    author      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    -- pending | approved | rejected | superseded | expired | applied
    state       TEXT NOT NULL,
    selected    BIGINT NOT NULL,
    blocked     BIGINT NOT NULL,
    file        TEXT
);
CREATE INDEX plans_job_target ON plans (job, target, state);

CREATE TABLE decisions (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plan_id     TEXT NOT NULL REFERENCES plans (id),
    -- approve | reject | confirm-station | confirm-typed | confirm-typed-failed
    kind        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    role        TEXT,
    reason      TEXT,
    detail      TEXT,
    acks        TEXT,
    signature   TEXT,
    at          TEXT NOT NULL
);
CREATE INDEX decisions_plan ON decisions (plan_id);

CREATE TABLE runs (
    id           TEXT PRIMARY KEY,
    plan_id      TEXT NOT NULL REFERENCES plans (id),
    job          TEXT NOT NULL,
    target       TEXT NOT NULL,
    action       TEXT NOT NULL,
    started_by   TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    -- running | done | failed | interrupted | verify-failed
    state        TEXT NOT NULL,
    batches      BIGINT NOT NULL,
    batches_done BIGINT NOT NULL DEFAULT 0,
    records_done BIGINT NOT NULL DEFAULT 0,
    skipped      BIGINT NOT NULL DEFAULT 0,
    error        TEXT,
    backup       TEXT,
    report       TEXT
);
CREATE INDEX runs_target ON runs (target, state);

-- One row per batch of a run: written `prepared` before the target commits,
-- `committed` after. `post` holds what the batch's rows look like after it,
-- so a run resumed after a crash between the two can tell which happened.
CREATE TABLE batches (
    run_id        TEXT NOT NULL REFERENCES runs (id),
    seq           BIGINT NOT NULL,
    state         TEXT NOT NULL,
    backup_start  BIGINT NOT NULL,
    backup_end    BIGINT NOT NULL,
    done          BIGINT NOT NULL,
    skipped       TEXT NOT NULL,
    post          TEXT NOT NULL,
    effects       TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE locks (
    target        TEXT PRIMARY KEY,
    run_id        TEXT NOT NULL,
    owner         TEXT NOT NULL,
    host          TEXT NOT NULL,
    pid           BIGINT NOT NULL,
    acquired_at   TEXT NOT NULL,
    heartbeat_at  TEXT NOT NULL
);

-- The audit trail: each event's hash covers the previous one's.
CREATE TABLE events (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         TEXT NOT NULL,
    kind       TEXT NOT NULL,
    actor      TEXT NOT NULL,
    plan_id    TEXT,
    run_id     TEXT,
    detail     TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
